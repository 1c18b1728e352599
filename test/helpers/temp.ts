import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Test } from 'tap'

/** A temporary directory removed when the test ends: `npm test` leaves none behind (CI checks). */
export function tempDir (t: Test, prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), `ce-${prefix}-`))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}
