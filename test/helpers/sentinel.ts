import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Test } from 'tap'
import { freePort } from './redis.js'
import { spawnRedis, startPrimaryAndReplica, type RedisNode } from './replica.js'
import { tempDir } from './temp.js'

/**
 * A primary, one replica and three sentinels (`redis-server <conf>
 * --sentinel`) watching them as master group `checkout`, quick to fail over:
 * the primary is down after 500 ms without answering. Resolves once the
 * sentinels know each other and the replica, so a failover can happen.
 */
export const MASTER_NAME = 'checkout'

export interface SentinelSetup {
  primary: RedisNode
  replica: RedisNode
  sentinels: RedisNode[]
  /** REDIS_SENTINELS for these. */
  addresses: string
}

export async function startSentinels (t: Test): Promise<SentinelSetup> {
  const { primary, replica } = await startPrimaryAndReplica(t)
  const sentinels: RedisNode[] = []
  for (let i = 0; i < 3; i++) {
    const port = await freePort()
    const dir = tempDir(t, 'sentinel')
    const conf = join(dir, 'sentinel.conf')
    // Sentinel rewrites its config file as it learns the topology: one writable file each.
    writeFileSync(conf, [
      `port ${port}`, 'bind 127.0.0.1', `dir ${dir}`,
      `sentinel monitor ${MASTER_NAME} 127.0.0.1 ${primary.port} 2`,
      `sentinel down-after-milliseconds ${MASTER_NAME} 500`,
      `sentinel failover-timeout ${MASTER_NAME} 5000`,
      `sentinel parallel-syncs ${MASTER_NAME} 1`
    ].join('\n') + '\n')
    sentinels.push(await spawnRedis(t, [conf, '--sentinel'], { port, sentinel: true, plain: true }))
  }
  await Promise.all(sentinels.map(async (s) => await untilKnown(s)))
  return { primary, replica, sentinels, addresses: sentinels.map((s) => `127.0.0.1:${s.port}`).join(',') }
}

async function untilKnown (sentinel: RedisNode, timeoutMs = 15_000): Promise<void> {
  const c = sentinel.client()
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const flat = await c.call('SENTINEL', 'MASTER', MASTER_NAME) as string[]
    const info: Record<string, string> = {}
    for (let i = 0; i + 1 < flat.length; i += 2) info[flat[i] ?? ''] = flat[i + 1] ?? ''
    if (info['num-other-sentinels'] === '2' && info['num-slaves'] === '1') break
    if (Date.now() > deadline) throw new Error(`sentinel ${sentinel.port} did not learn the others within ${timeoutMs} ms: ${JSON.stringify(info)}`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  c.disconnect()
}
