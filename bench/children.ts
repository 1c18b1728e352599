import { spawn, type ChildProcess } from 'node:child_process'
import { createWriteStream, rmSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

/**
 * Every process the benchmark starts (redis-server, workers) is tracked here,
 * so that the end of the run, an error or Ctrl-C kills all of them and
 * nothing else.
 */
export const root = fileURLToPath(new URL('..', import.meta.url))

const live = new Set<ChildProcess>()
const dirs = new Set<string>()

export function track (proc: ChildProcess): void {
  live.add(proc)
  proc.once('exit', () => live.delete(proc))
}

/** A temporary directory to remove at the end (a redis-server's data directory). */
export function trackDir (dir: string): void {
  dirs.add(dir)
}

export function removeDir (dir: string): void {
  rmSync(dir, { recursive: true, force: true })
  dirs.delete(dir)
}

/** SIGKILLs every tracked process still running and removes the tracked directories. Synchronous, so it also works in an 'exit' handler. */
export function killAll (): void {
  for (const proc of live) {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL')
  }
  live.clear()
  for (const dir of dirs) removeDir(dir)
}

export interface NodeChild {
  proc: ChildProcess
  /** The first 64 KiB it wrote to stdout and stderr (all of it goes to the log file). */
  output: () => string
  exited: Promise<void>
  /** SIGTERM, then SIGKILL after graceMs. */
  stop: (graceMs?: number) => Promise<void>
}

/**
 * Runs a TypeScript entry point of this repository as
 * `node [nodeArgs] --import tsx <entry>`, its output into logFile.
 */
export function spawnNode (entry: string, env: Record<string, string>, logFile: string, nodeArgs: string[] = []): NodeChild {
  const proc = spawn(process.execPath, [...nodeArgs, '--import', 'tsx', entry], {
    cwd: root,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  track(proc)
  const log = createWriteStream(logFile, { flags: 'a' })
  let out = ''
  const keep = (d: Buffer) => {
    if (out.length < 65_536) out += d.toString()
    log.write(d)
  }
  proc.stdout?.on('data', keep)
  proc.stderr?.on('data', keep)
  const exited = new Promise<void>((resolve) => proc.once('close', () => { log.end(); resolve() }))
  return {
    proc,
    output: () => out,
    exited,
    async stop (graceMs = 5000) {
      if (proc.exitCode !== null || proc.signalCode !== null) return
      proc.kill('SIGTERM')
      const timer = setTimeout(() => proc.kill('SIGKILL'), graceMs)
      await exited
      clearTimeout(timer)
    }
  }
}
