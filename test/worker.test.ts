import t, { type Test } from 'tap'
import { createHold, getCheckout } from '../src/store/checkout-store.js'
import { closeRedis } from '../src/redis/connection.js'
import { listDeadLetters } from '../src/store/dead-letters.js'
import { testConfig } from './helpers/app.js'
import { startRedis } from './helpers/redis.js'
import { recorder, testStore, testWorker, until } from './helpers/worker.js'

const redis = await startRedis()
t.teardown(redis.stop)

const setup = (t: Test, env: Record<string, string> = {}) => {
  const config = testConfig(redis.url, { EXPIRY_BACKOFF_MS: '50', ...env })
  const store = testStore(config)
  t.teardown(() => closeRedis(store.redis))
  return { config, store }
}

t.test('the handler gets the payload once, with deadline, expiredAt, attempt and idempotency key', async (t) => {
  const { config, store } = setup(t)
  const { calls, handler } = recorder()
  const worker = await testWorker(config, [handler])
  t.teardown(() => worker.close())
  const hold = await createHold(store, { id: 'w-1', ttlMs: 1000, payload: { sku: 'A', qty: 1 } })
  t.ok(await until(() => calls.length === 1, 3000), 'handler called')
  await new Promise((resolve) => setTimeout(resolve, 300))
  t.equal(calls.length, 1, 'exactly once')
  const event = calls[0]!
  t.match(event, { id: 'w-1', payload: { sku: 'A', qty: 1 }, attempt: 1, generation: 1, idempotencyKey: /^w-1:[0-9a-f]{16}:1$/ })
  t.equal(Date.parse(event.deadline), hold.expiresAt)
  t.ok(Date.parse(event.expiredAt) >= hold.expiresAt)
  t.ok(await until(async () => (await getCheckout(store, 'w-1')).outcome === 'handled', 2000))
  const view = await getCheckout(store, 'w-1')
  t.match(view, { status: 'expired', outcome: 'handled', attempts: 1 })
  t.ok(view.handledAt! >= view.expiresAt)
})

t.test('a handler that fails twice then succeeds runs 3 times and ends handled', async (t) => {
  const { config, store } = setup(t)
  const { calls, handler } = recorder((e) => { if (e.attempt < 3) throw new Error(`boom ${e.attempt}`) })
  const worker = await testWorker(config, [handler])
  t.teardown(() => worker.close())
  await createHold(store, { id: 'w-retry', ttlMs: 1000 })
  t.ok(await until(async () => (await getCheckout(store, 'w-retry')).outcome === 'handled', 5000), 'handled in the end')
  t.same(calls.map((c) => c.attempt), [1, 2, 3])
  t.equal(new Set(calls.map((c) => c.idempotencyKey)).size, 1, 'same idempotency key on every run')
  t.match(calls[0]!.idempotencyKey, /^w-retry:[0-9a-f]{16}:1$/)
  t.match(await getCheckout(store, 'w-retry'), { attempts: 3, lastError: 'boom 2' })
  t.equal(worker.runner.stats.retried, 2)
})

t.test('a handler that always fails ends in the dead-letter set with its error', async (t) => {
  const { config, store } = setup(t, { EXPIRY_MAX_ATTEMPTS: '3' })
  const { calls, handler } = recorder(() => { throw new Error('payment service down') })
  const worker = await testWorker(config, [handler])
  t.teardown(() => worker.close())
  await createHold(store, { id: 'w-dead', ttlMs: 1000, payload: { p: 1 } })
  t.ok(await until(async () => (await getCheckout(store, 'w-dead')).outcome === 'dead', 5000), 'dead')
  t.equal(calls.length, 3)
  t.match(await getCheckout(store, 'w-dead'), { status: 'expired', outcome: 'dead', attempts: 3, lastError: 'payment service down' })
  const shard = store.keys.shardOf('w-dead')
  const dead = await listDeadLetters(store, shard)
  t.match(dead, [{ id: 'w-dead', generation: 1, attempts: 3, lastError: 'payment service down', payload: { p: 1 } }])
})

t.test('a worker that stops mid-handler gives the order back; another worker runs it, the interrupted attempt not counted', async (t) => {
  const { config, store } = setup(t, { EXPIRY_LEASE_MS: '1000' })
  let release: () => void = () => {}
  const stuck = recorder(async () => { await new Promise<void>((resolve) => { release = resolve }) })
  const first = await testWorker(config, [stuck.handler])
  await createHold(store, { id: 'w-takeover', ttlMs: 1000 })
  t.ok(await until(() => stuck.calls.length === 1, 3000), 'first worker started the handler')
  await first.close(0) // gives up on the running handler at once and gives its claim back
  const second = recorder()
  const worker = await testWorker(config, [second.handler])
  t.teardown(() => worker.close())
  t.ok(await until(() => second.calls.length === 1, 4000), 'second worker took over')
  t.equal(second.calls[0]!.attempt, 1)
  t.ok(await until(async () => (await getCheckout(store, 'w-takeover')).outcome === 'handled', 2000))
  t.equal(second.calls[0]!.idempotencyKey, stuck.calls[0]!.idempotencyKey, 'the same idempotency key')
  release()
})

t.test('a completed hold never reaches the handler; foreign expired keys are ignored', async (t) => {
  const { config, store } = setup(t)
  const { calls, handler } = recorder()
  const worker = await testWorker(config, [handler])
  t.teardown(() => worker.close())
  const { endHold } = await import('../src/store/checkout-store.js')
  await createHold(store, { id: 'w-done', ttlMs: 1000 })
  await endHold(store, 'w-done', 'completed')
  await store.redis.set('someone-else:key', '1', 'PX', 100)
  await store.redis.set(`${config.KEY_PREFIX}{9999}:timer:x`, '1', 'PX', 100)
  // The positive control: a hold due at the same time is handled, so the worker is working.
  await createHold(store, { id: 'w-control', ttlMs: 1000 })
  t.ok(await until(() => calls.length >= 1, 3000), 'the control was handled')
  await new Promise((resolve) => setTimeout(resolve, 500))
  t.same(calls.map((c) => c.id), ['w-control'], 'nothing else: not the completed hold, not the foreign keys')
})

t.test('EXPIRY_CONCURRENCY is a hard limit on handlers running at once', async (t) => {
  const { config, store } = setup(t, { EXPIRY_CONCURRENCY: '5' })
  let running = 0
  let peak = 0
  const { calls, handler } = recorder(async () => {
    running++
    peak = Math.max(peak, running)
    await new Promise((resolve) => setTimeout(resolve, 50))
    running--
  })
  const worker = await testWorker(config, [handler])
  t.teardown(() => worker.close())
  await Promise.all(Array.from({ length: 100 }, async (_v, i) => await createHold(store, { id: `cc-${i}`, ttlMs: 1000 })))
  t.ok(await until(() => calls.length === 100, 10_000), 'all handled')
  t.ok(peak <= 5, `at most 5 at once (peak ${peak})`)
  t.ok(peak >= 2, 'but in parallel')
})

t.test('an idle worker learns of a new hold and of a retry from <prefix>due, without keyspace events or polling', async (t) => {
  const { config, store } = setup(t, { EXPIRY_POLL_MS: '600000', EXPIRY_BACKOFF_MS: '300' })
  const { calls, handler } = recorder((e) => { if (e.attempt === 1) throw new Error('once') })
  const worker = await testWorker(config, [handler])
  t.teardown(() => worker.close())
  // The worker enabled expired events at start; with them off only the scripts' messages are left.
  const admin = redis.client()
  await admin.config('SET', 'notify-keyspace-events', '')
  t.teardown(() => admin.config('SET', 'notify-keyspace-events', 'Ex'))
  await new Promise((resolve) => setTimeout(resolve, 200))
  const hold = await createHold(store, { id: 'due-1', ttlMs: 1000 })
  t.ok(await until(() => calls.length >= 1, 3000), 'the first run came on time')
  t.ok(Date.now() - hold.expiresAt < 1000, 'within a second of the deadline')
  t.ok(await until(() => calls.length >= 2, 3000), 'and the retry after its backoff')
  t.match(calls.map((c) => c.attempt), [1, 2])
})
