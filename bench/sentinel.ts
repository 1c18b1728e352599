import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort, waitForRedis } from '../test/helpers/redis.js'
import { removeDir, track, trackDir } from './children.js'
import { adminClient, sleep } from './util.js'

/**
 * A primary, one replica and three sentinels for `npm run bench:failover`,
 * as the Sentinel test sets them up: master group `checkout`, the primary
 * declared down after 500 ms without an answer.
 */
export const SENTINEL_MASTER = 'checkout'

export interface BenchSentinels {
  primaryPort: number
  replicaPort: number
  /** REDIS_SENTINELS for these. */
  addresses: string
  killPrimary: () => void
  stop: () => Promise<void>
}

export async function startSentinels (): Promise<BenchSentinels> {
  const procs: ChildProcess[] = []
  const dirs: string[] = []
  const server = async (args: (port: number, dir: string) => string[]) => {
    const port = await freePort()
    const dir = mkdtempSync(join(tmpdir(), 'ce-bench-sentinel-'))
    trackDir(dir)
    dirs.push(dir)
    const proc = spawn('redis-server', args(port, dir), { stdio: 'ignore' })
    track(proc)
    procs.push(proc)
    await waitForRedis(port)
    return { port, proc }
  }
  const plain = (port: number, dir: string) => ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no']
  const primary = await server(plain)
  const replica = await server((port, dir) => [...plain(port, dir), '--replicaof', '127.0.0.1', String(primary.port)])
  const sentinelPorts: number[] = []
  for (let i = 0; i < 3; i++) {
    const s = await server((port, dir) => {
      const conf = join(dir, 'sentinel.conf')
      // Sentinel rewrites its config file as it learns the topology: one writable file each.
      writeFileSync(conf, [
        `port ${port}`, 'bind 127.0.0.1', `dir ${dir}`,
        `sentinel monitor ${SENTINEL_MASTER} 127.0.0.1 ${primary.port} 2`,
        `sentinel down-after-milliseconds ${SENTINEL_MASTER} 500`,
        `sentinel failover-timeout ${SENTINEL_MASTER} 5000`
      ].join('\n') + '\n')
      return [conf, '--sentinel']
    })
    sentinelPorts.push(s.port)
  }
  // Ready when every sentinel knows the replica and the two other sentinels.
  for (const port of sentinelPorts) {
    const c = adminClient(port, 'bench:sentinel')
    const deadline = Date.now() + 20_000
    for (;;) {
      const flat = await c.call('SENTINEL', 'MASTER', SENTINEL_MASTER) as string[]
      const info = new Map<string, string>()
      for (let i = 0; i + 1 < flat.length; i += 2) info.set(flat[i] ?? '', flat[i + 1] ?? '')
      if (info.get('num-other-sentinels') === '2' && info.get('num-slaves') === '1') break
      if (Date.now() > deadline) throw new Error(`sentinel ${port} did not learn the topology in 20 s`)
      await sleep(100)
    }
    c.disconnect()
  }
  return {
    primaryPort: primary.port,
    replicaPort: replica.port,
    addresses: sentinelPorts.map((p) => `127.0.0.1:${p}`).join(','),
    killPrimary: () => { primary.proc.kill('SIGKILL') },
    async stop () {
      for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL')
      await sleep(100)
      for (const d of dirs) removeDir(d)
    }
  }
}
