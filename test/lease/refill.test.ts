import t from 'tap'
import { closeRedis } from '../../src/redis/connection.js'
import { createHold } from '../../src/store/checkout-store.js'
import { testConfig } from '../helpers/app.js'
import { startRedis } from '../helpers/redis.js'
import { testStore, testWorker, until } from '../helpers/worker.js'

/**
 * The refill gate (claims wait for EXPIRY_CONCURRENCY/8 free slots) applies
 * only after the runner was full. With 57 of 64 slots busy on slow handlers
 * and the runner never full, a new expiry starts on time.
 */
const redis = await startRedis()
t.teardown(redis.stop)

t.test('57 of 64 slots busy, never full: a new expiry starts at its deadline, not when the slow ones end', async (t) => {
  const config = testConfig(redis.url, { EXPIRY_CONCURRENCY: '64' })
  const store = testStore(config)
  t.teardown(() => closeRedis(store.redis))
  const started = new Map<string, number>()
  const worker = await testWorker(config, [{
    name: 'slow-or-fast',
    handle: async (event) => {
      started.set(event.id, Date.now())
      if (event.id.startsWith('slow-')) await new Promise((resolve) => setTimeout(resolve, 8000))
    }
  }])
  t.teardown(() => worker.close(100))
  await Promise.all(Array.from({ length: 57 }, async (_v, i) => await createHold(store, { id: `slow-${i}`, ttlMs: 1000 })))
  t.ok(await until(() => started.size === 57, 5000), 'the 57 slow handlers run')
  const deadline = Date.now() + 1000
  await Promise.all(Array.from({ length: 3 }, async (_v, i) => await createHold(store, { id: `fast-${i}`, ttlMs: 1000 })))
  t.ok(await until(() => started.size === 60, 7000), 'the new expiries start')
  const late = Math.max(...[0, 1, 2].map((i) => (started.get(`fast-${i}`) ?? Infinity) - deadline))
  t.ok(late < 2000, `the new expiries started ${late} ms after their deadline, while the slow ones still ran`)
})
