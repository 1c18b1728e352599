import t from 'tap'
import { pino } from 'pino'
import type { Redis } from 'ioredis'
import { startExpiryWorker } from '../../src/expiry/worker.js'
import { createRedis } from '../../src/redis/connection.js'
import { testConfig } from '../helpers/app.js'
import { startRedis } from '../helpers/redis.js'
import { pauseRedis, redisPid } from '../helpers/redis-pause.js'

/**
 * Redis hung but connected (SIGSTOP, like a silent partition): the worker
 * keeps one heartbeat per shard in flight, not one per tick, and its
 * commands time out, so what waits for Redis stays bounded however long
 * the hang lasts.
 */
const redis = await startRedis({ extraArgs: [] })
t.teardown(redis.stop)

t.test('a 4 s hang: the commands waiting for Redis stay bounded by the shards, not by the hang', async (t) => {
  const config = testConfig(redis.url, { KEY_SHARDS: '16' })
  const command = createRedis({ url: config.REDIS_URL, role: 'worker' })
  const worker = await startExpiryWorker({
    config,
    redis: command,
    subscriber: createRedis({ url: config.REDIS_URL, role: 'subscriber' }),
    handlers: [{ name: 'noop', handle: () => {} }],
    log: pino({ level: 'silent' })
  })
  t.teardown(() => worker.close(100))
  const admin = redis.client()
  const pid = await redisPid(admin)
  await new Promise((resolve) => setTimeout(resolve, 500))

  let most = 0
  const sample = setInterval(() => {
    most = Math.max(most, waiting(command))
  }, 20)
  await pauseRedis(pid, 4000)
  clearInterval(sample)
  t.comment(`most commands waiting for a reply during the hang: ${most}`)
  // One heartbeat and one poll per shard, plus a few beats sent again after a command timeout.
  t.ok(most <= 16 * 4, `at most ${16 * 4} commands waited (${most})`)
  t.ok(await waitReady(command), 'the worker is back to normal after the hang')
})

/** Commands sent and not answered, batched by auto-pipelining behind them, or waiting for a connection. */
function waiting (r: Redis): number {
  const client = r as unknown as {
    commandQueue: { length: number }
    offlineQueue: { length: number }
    _autoPipelines: Map<string, { length: number }>
  }
  let n = client.commandQueue.length + client.offlineQueue.length
  for (const pipeline of client._autoPipelines.values()) n += pipeline.length
  return n
}

async function waitReady (r: Redis): Promise<boolean> {
  for (let i = 0; i < 50; i++) {
    try {
      await r.ping()
      return true
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  }
  return false
}

