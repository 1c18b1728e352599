import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort, waitForRedis } from '../test/helpers/redis.js'
import { removeDir, track, trackDir } from './children.js'

/**
 * A throwaway `redis-server` on a free 127.0.0.1 port with default settings
 * (hz 10, no RDB snapshots), in a temporary directory. With `appendonly` it
 * can be stopped and started again on the same port and data directory.
 */
export interface BenchRedis {
  port: number
  url: string
  /** Stops the server (SIGTERM: a clean shutdown that flushes the AOF). */
  stop: () => Promise<void>
  /** Starts it again on the same port and data directory. */
  start: () => Promise<void>
  /** Kills the server and removes its directory. */
  destroy: () => Promise<void>
}

/** `redis-server --version`, e.g. "7.0.15". */
export function redisVersion (): string {
  const out = spawnSync('redis-server', ['--version'], { encoding: 'utf8' })
  if (out.error) throw new Error(`redis-server is not installed (apt-get install redis-server): ${out.error.message}`)
  return /v=(\S+)/.exec(out.stdout)?.[1] ?? out.stdout.trim()
}

/**
 * `config`: a configuration file read first (e.g. the shipped redis.conf);
 * port, bind address, directory and persistence given here override it.
 */
export async function startRedisServer (opts: { appendonly?: boolean, extraArgs?: string[], config?: string } = {}): Promise<BenchRedis> {
  const port = await freePort()
  const dir = mkdtempSync(join(tmpdir(), 'ce-bench-redis-'))
  trackDir(dir)
  const args = [
    ...opts.config === undefined ? [] : [opts.config],
    '--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '',
    '--appendonly', opts.appendonly === true ? 'yes' : 'no',
    ...opts.extraArgs ?? []
  ]
  let proc: ChildProcess | undefined
  const halt = async (signal: NodeJS.Signals) => {
    const p = proc
    if (!p || p.exitCode !== null || p.signalCode !== null) return
    const exited = new Promise((resolve) => p.once('exit', resolve))
    p.kill(signal)
    await exited
  }
  const start = async () => {
    const p = spawn('redis-server', args, { stdio: 'ignore' })
    proc = p
    track(p)
    await Promise.race([
      waitForRedis(port),
      new Promise((_resolve, reject) => p.once('error', (err) => reject(new Error(`cannot start redis-server: ${err.message}`))))
    ])
  }
  await start()
  return {
    port,
    url: `redis://127.0.0.1:${port}/0`,
    start,
    stop: async () => await halt('SIGTERM'),
    async destroy () {
      await halt('SIGKILL')
      removeDir(dir)
    }
  }
}
