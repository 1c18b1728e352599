import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { freePort } from './redis.js'

/**
 * Starts the real API and worker entry points as child processes, the way
 * they run in production, and reads what the test handler recorded.
 */
const root = fileURLToPath(new URL('../../', import.meta.url))
export const RECORD_HANDLER = fileURLToPath(new URL('../fixtures/record-handler.mjs', import.meta.url))

/**
 * The environment for a child process: without tap's process tracking and
 * coverage. tap records coverage in every process that inherits its
 * NODE_OPTIONS, and merges all records of one file URL as if they were the
 * same compiled code; a child that loads src/*.ts under tsx has different
 * compiled code behind the same URL than the test process (tap's own
 * TypeScript loader), and the merge collapses the whole report. Coverage
 * therefore counts the code the test files run in process. Without tap's
 * loader hooks a child also starts in less CPU time.
 */
export function childEnv (env: Record<string, string>): NodeJS.ProcessEnv {
  const { NODE_V8_COVERAGE: _coverage, NODE_OPTIONS: options = '', ...rest } = process.env
  const kept = options.replace(/"[^"]*@tapjs\/processinfo[^"]*"|\S*@tapjs\/processinfo\S*/g, '').trim()
  return { ...rest, ...(kept === '' ? {} : { NODE_OPTIONS: kept }), _TAPJS_PROCESSINFO_COVERAGE_: '0', ...env }
}

/** An entry point of ours, as its source path: src/server.ts, workers/expiry-worker.ts, bin/checkoutctl.ts. */
export type Entry = `${'src' | 'workers' | 'bin'}/${string}.ts`

/** Whether dist/ holds every source file (TypeScript compiled, Lua copied) built after its last change. */
function buildIsFresh (): boolean {
  for (const dir of ['src', 'workers', 'bin']) {
    for (const entry of readdirSync(join(root, dir), { recursive: true, withFileTypes: true })) {
      if (!entry.isFile() || entry.name.endsWith('.d.ts')) continue
      const source = relative(root, join(entry.parentPath ?? entry.path, entry.name))
      const built = source.endsWith('.ts') ? source.replace(/\.ts$/, '.js') : source.endsWith('.lua') ? source : undefined
      if (built === undefined) continue
      const out = statSync(join(root, 'dist', built), { throwIfNoEntry: false })
      if (out === undefined || out.mtimeMs < statSync(join(root, source)).mtimeMs) return false
    }
  }
  return true
}

let fromBuild: boolean | undefined

/**
 * The node arguments that run an entry point: the build in dist/ when it is
 * up to date with the sources (CI runs `npm run build` before `npm test`),
 * otherwise the sources under tsx. The built code is what production runs,
 * and a child starts from it in about a third of the CPU time, which adds up
 * over the suite's many children on 2 cores. TEST_FROM_SOURCES=1 always
 * runs the sources.
 */
export function entryArgs (entry: Entry): string[] {
  fromBuild ??= process.env.TEST_FROM_SOURCES !== '1' && buildIsFresh()
  return fromBuild ? [join(root, 'dist', entry.replace(/\.ts$/, '.js'))] : ['--import', 'tsx', entry]
}

export interface Child {
  proc: ChildProcess
  output: () => string
  /** Resolves with the exit code and how long the exit took after the signal. */
  signal: (sig: NodeJS.Signals) => Promise<{ code: number | null, signal: string | null, ms: number }>
  exited: Promise<{ code: number | null, signal: string | null }>
}

export function startChild (entry: 'src/server.ts' | 'workers/expiry-worker.ts', env: Record<string, string>): Child {
  const proc = spawn(process.execPath, entryArgs(entry), {
    cwd: root,
    // A worker's HTTP port on a free port: several workers run side by side in tests.
    env: childEnv({ LOG_LEVEL: 'info', WORKER_HTTP_PORT: '0', ...env }),
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let out = ''
  proc.stdout?.on('data', (d: Buffer) => { out += d.toString() })
  proc.stderr?.on('data', (d: Buffer) => { out += d.toString() })
  const exited = new Promise<{ code: number | null, signal: string | null }>((resolve) => {
    proc.once('exit', (code, signal) => resolve({ code, signal }))
  })
  return {
    proc,
    output: () => out,
    exited,
    async signal (sig) {
      const started = Date.now()
      proc.kill(sig)
      const result = await exited
      return { ...result, ms: Date.now() - started }
    }
  }
}

export async function waitForOutput (child: Child, text: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!child.output().includes(text)) {
    if (Date.now() > deadline) {
      child.proc.kill('SIGKILL')
      throw new Error(`no "${text}" within ${timeoutMs} ms; output:\n${child.output()}`)
    }
    if (child.proc.exitCode !== null) throw new Error(`process exited (${child.proc.exitCode}) before "${text}":\n${child.output()}`)
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
}

export async function startApi (env: Record<string, string>): Promise<Child & { base: string }> {
  const port = await freePort()
  const child = startChild('src/server.ts', { ...env, PORT: String(port), HOST: '127.0.0.1' })
  await waitForOutput(child, 'checkout API ready')
  return { ...child, base: `http://127.0.0.1:${port}` }
}

export async function startWorker (env: Record<string, string>): Promise<Child> {
  const child = startChild('workers/expiry-worker.ts', env)
  await waitForOutput(child, 'expiry worker ready')
  return child
}

export interface Recorded {
  id: string
  payload?: Record<string, unknown>
  attempt: number
  generation: number
  idempotencyKey: string
  deadline: string
  ok: boolean
  /** When the run started and ended (ms). */
  startedAt: number
  at: number
  pid: number
}

export function readRecords (file: string): Recorded[] {
  if (!existsSync(file)) return []
  // A worker may be appending right now: a last line without its newline is not complete yet.
  const lines = readFileSync(file, 'utf8').split('\n')
  lines.pop()
  return lines.filter(Boolean).map((l) => JSON.parse(l) as Recorded)
}

/** Successful runs per order id. */
export function successCounts (file: string): Map<string, number> {
  const counts = new Map<string, number>()
  for (const r of readRecords(file)) if (r.ok) counts.set(r.id, (counts.get(r.id) ?? 0) + 1)
  return counts
}
