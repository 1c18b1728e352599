import t from 'tap'
import { closeRedis } from '../../src/redis/connection.js'
import { createHold, getCheckout } from '../../src/store/checkout-store.js'
import { testConfig } from '../helpers/app.js'
import { startRedis } from '../helpers/redis.js'
import { testStore, testWorker, until } from '../helpers/worker.js'

/**
 * The other side of an uncounted abort: when the lease ran out because the
 * worker's own process stalled (a handler blocking the event loop), the
 * aborted attempt counts, so a handler that stalls its worker every time
 * still ends in the dead-letter set.
 */
const redis = await startRedis()
t.teardown(redis.stop)

t.test('a lease lost to a stall of the worker itself counts the attempt', async (t) => {
  const config = testConfig(redis.url, { EXPIRY_LEASE_MS: '1000', EXPIRY_HEARTBEAT_MS: '100', KEY_SHARDS: '1' })
  const store = testStore(config)
  t.teardown(() => closeRedis(store.redis))
  const runs: Array<{ attempt: number, reason?: string }> = []
  const worker = await testWorker(config, [{
    name: 'stalls-once',
    handle: async (event, ctx) => {
      const run: (typeof runs)[number] = { attempt: event.attempt }
      runs.push(run)
      if (runs.length > 1) return
      const until = Date.now() + 1500
      while (Date.now() < until) { /* block the event loop past the lease */ }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 5000)
        ctx.signal.addEventListener('abort', () => {
          clearTimeout(timer)
          run.reason = (ctx.signal.reason as Error).message
          resolve()
        }, { once: true })
      })
    }
  }])
  t.teardown(() => worker.close(100))
  await createHold(store, { id: 'stall', ttlMs: 1000 })
  t.ok(await until(async () => (await getCheckout(store, 'stall')).outcome === 'handled', 10_000), 'handled in the end')
  t.match(runs[0], { attempt: 1, reason: /the worker stalled/ }, 'aborted as a stall of the worker')
  t.same(runs.map((r) => r.attempt), [1, 2], 'run again as attempt 2: the stalled attempt counted')
})
