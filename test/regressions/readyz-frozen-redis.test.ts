import { pino } from 'pino'
import t from 'tap'
import { startExpiryWorker } from '../../src/expiry/worker.js'
import { createRedis } from '../../src/redis/connection.js'
import { testConfig } from '../helpers/app.js'
import { startRedis } from '../helpers/redis.js'
import { redisPid } from '../helpers/redis-pause.js'
import { recorder, until } from '../helpers/worker.js'

/**
 * A frozen Redis (SIGSTOP) keeps its connections open: the worker's
 * /readyz must say 503 once Redis has answered no heartbeat for
 * EXPIRY_LEASE_MS, and 200 again once it answers (SIGCONT).
 */
const LEASE_MS = 1500
// A process of its own, for its pid.
const redis = await startRedis({ extraArgs: [] })
t.teardown(redis.stop)

t.test('readyz is 503 while Redis is frozen, 200 once it answers again', async (t) => {
  const config = testConfig(redis.url, { EXPIRY_LEASE_MS: String(LEASE_MS), EXPIRY_HEARTBEAT_MS: '200' })
  const worker = await startExpiryWorker({
    config,
    redis: createRedis({ url: config.REDIS_URL, role: 'worker' }),
    subscriber: createRedis({ url: config.REDIS_URL, role: 'subscriber' }),
    handlers: [recorder().handler],
    log: pino({ level: 'silent' }),
    http: { port: 0, host: '127.0.0.1' }
  })
  t.teardown(() => worker.close(1000))
  const readyz = async () => {
    const res = await fetch(`http://127.0.0.1:${worker.httpPort ?? 0}/readyz`, { signal: AbortSignal.timeout(2000) })
    return { status: res.status, retryAfter: res.headers.get('retry-after'), body: await res.json() as { reason?: string } }
  }
  t.ok(await until(async () => (await readyz()).status === 200, 5000), 'ready')

  const pid = await redisPid(redis.client())
  process.kill(pid, 'SIGSTOP')
  let frozen = true
  const thaw = () => {
    if (frozen) process.kill(pid, 'SIGCONT')
    frozen = false
  }
  t.teardown(thaw)
  const frozenAt = Date.now()
  // The bound is the lease; the rest is room for a busy machine.
  t.ok(await until(async () => (await readyz()).status === 503, LEASE_MS + 5000, 50), '503 while Redis is frozen')
  t.comment(`503 after ${Date.now() - frozenAt} ms frozen (lease ${LEASE_MS} ms)`)
  const answer = await readyz()
  t.equal(answer.retryAfter, '1', 'the 503 says when to ask again')
  t.match(answer.body.reason, /Redis/)

  thaw()
  t.ok(await until(async () => (await readyz()).status === 200, 10_000, 50), '200 once Redis answers again')
})
