import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { freePort } from './redis.js'

/**
 * Starts the real API and worker entry points as child processes, the way
 * they run in production, and reads what the test handler recorded.
 */
const root = fileURLToPath(new URL('../../', import.meta.url))
export const RECORD_HANDLER = fileURLToPath(new URL('../fixtures/record-handler.mjs', import.meta.url))

/**
 * The environment for a child process. Without NODE_V8_COVERAGE: children
 * run under tsx, which compiles our sources differently from the test
 * runner's loader, and merging both kinds of coverage for the same file
 * sometimes collapses the whole report.
 */
export function childEnv (env: Record<string, string>): NodeJS.ProcessEnv {
  const { NODE_V8_COVERAGE: _coverage, ...rest } = process.env
  return { ...rest, ...env }
}

export interface Child {
  proc: ChildProcess
  output: () => string
  /** Resolves with the exit code and how long the exit took after the signal. */
  signal: (sig: NodeJS.Signals) => Promise<{ code: number | null, signal: string | null, ms: number }>
  exited: Promise<{ code: number | null, signal: string | null }>
}

export function startChild (entry: 'src/server.ts' | 'workers/expiry-worker.ts', env: Record<string, string>): Child {
  const proc = spawn(process.execPath, ['--import', 'tsx', entry], {
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
