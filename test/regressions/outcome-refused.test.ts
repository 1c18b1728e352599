import t from 'tap'
import type { ExpiryEvent } from '../../src/expiry/handlers.js'
import { closeRedis } from '../../src/redis/connection.js'
import { createHold, getCheckout } from '../../src/store/checkout-store.js'
import { testConfig } from '../helpers/app.js'
import { startRedis } from '../helpers/redis.js'
import { testStore, testWorker, until } from '../helpers/worker.js'

/**
 * Redis refuses every write (OOM under noeviction) just as handlers finish,
 * for less than a lease. The acknowledgements were only logged before, and
 * the jobs stayed held until their safety net; now they are sent again
 * until Redis takes them: each order is handled once, by one run.
 */
const redis = await startRedis()
t.teardown(redis.stop)

t.test('acks Redis refuses with OOM while handlers finish are recorded once it takes writes again', async (t) => {
  const config = testConfig(redis.url)
  const store = testStore(config)
  t.teardown(() => closeRedis(store.redis))
  const admin = redis.client()
  let open = () => {}
  const gate = new Promise<void>((resolve) => { open = resolve })
  const runs: string[] = []
  const handler = { name: 'gated', handle: async (event: ExpiryEvent) => { runs.push(event.id); await gate } }
  const workers = [await testWorker(config, [handler]), await testWorker(config, [handler])]
  t.teardown(async () => { await Promise.all(workers.map(async (w) => await w.close(1000))) })
  const ids = Array.from({ length: 10 }, (_v, i) => `refused-${i}`)
  for (const id of ids) await createHold(store, { id, ttlMs: 1000 })
  t.ok(await until(() => runs.length === ids.length, 5000), 'every handler runs')

  await admin.config('SET', 'maxmemory-policy', 'noeviction')
  await admin.config('SET', 'maxmemory', '1')
  t.teardown(async () => { await admin.config('SET', 'maxmemory', '0').catch(() => {}) })
  open()
  await new Promise((resolve) => setTimeout(resolve, 1000))
  t.same((await Promise.all(ids.map(async (id) => (await getCheckout(store, id)).outcome))).filter((o) => o !== 'pending'), [],
    'nothing recorded while Redis refuses writes')
  await admin.config('SET', 'maxmemory', '0')

  const handled = async () => (await Promise.all(ids.map(async (id) => (await getCheckout(store, id)).outcome))).every((o) => o === 'handled')
  t.ok(await until(handled, 5000), 'every order handled once Redis takes writes')
  await new Promise((resolve) => setTimeout(resolve, 500))
  for (const id of ids) t.match(await getCheckout(store, id), { outcome: 'handled', attempts: 1 }, id)
  t.equal(runs.length, ids.length, 'no handler ran twice')
})
