import t, { type Test } from 'tap'
import { closeRedis } from '../src/redis/connection.js'
import { createHold, getCheckout } from '../src/store/checkout-store.js'
import { findDeadLetters, replayDeadLetter } from '../src/store/dead-letters.js'
import { openKeyspace } from '../src/store/layout.js'
import { testConfig } from './helpers/app.js'
import { startRedis } from './helpers/redis.js'
import { recorder, testStore, testWorker, until } from './helpers/worker.js'

/**
 * The idempotencyKey a handler deduplicates on must name one expiry and
 * nothing else: generations restart under a new KEY_PREFIX (the migration
 * docs/keys.md recommends) and on another Redis, so `<id>:<generation>`
 * alone comes back for a different expiry. It carries the epoch recorded
 * with the prefix's layout, the same on every run of one expiry, also after
 * a worker restarts.
 */
const redis = await startRedis()
t.teardown(redis.stop)
const quiet = { warn: () => {} }

const setup = (t: Test, env: Record<string, string> = {}) => {
  const config = testConfig(redis.url, { EXPIRY_BACKOFF_MS: '50', ...env })
  const store = testStore(config)
  t.teardown(() => closeRedis(store.redis))
  return { config, store }
}

const handled = async (store: ReturnType<typeof testStore>, id: string) =>
  await until(async () => (await getCheckout(store, id)).outcome === 'handled', 5000)

t.test('the same order id expiring under two prefixes on one Redis gets two keys', async (t) => {
  const keys: string[] = []
  for (const env of [{}, {}]) {
    const { config, store } = setup(t, env)
    const { calls, handler } = recorder()
    const worker = await testWorker(config, [handler])
    t.teardown(() => worker.close())
    const hold = await createHold(store, { id: 'cart-42', ttlMs: 1000 })
    t.equal(hold.generation, 1, 'generations start again under a new prefix')
    t.ok(await handled(store, 'cart-42'), 'handled')
    t.equal(calls.length, 1)
    keys.push(calls[0]!.idempotencyKey)
  }
  t.not(keys[0], keys[1], 'a new prefix never hands out a key an earlier expiry had')
  for (const key of keys) t.match(key, /^cart-42:[0-9a-f]{16}:1$/, '<orderId>:<epoch>:<generation>')
})

t.test('the same prefix on two Redis instances gets two epochs', async (t) => {
  const other = await startRedis()
  t.teardown(other.stop)
  const prefix = 'idem-same:'
  const a = await openKeyspace(redis.client(), prefix, 16, quiet)
  const b = await openKeyspace(other.client(), prefix, 16, quiet)
  t.not(a.idempotencyKey('x', 1), b.idempotencyKey('x', 1))
  const again = await openKeyspace(redis.client(), prefix, 16, quiet)
  t.equal(again.idempotencyKey('x', 1), a.idempotencyKey('x', 1), 'opening again reads the recorded epoch')
})

t.test('every retry of one expiry, and a restarted worker, carry the same key', async (t) => {
  const { config, store } = setup(t)
  const first = recorder((e) => { if (e.attempt < 3) throw new Error(`boom ${e.attempt}`) })
  const worker = await testWorker(config, [first.handler])
  await createHold(store, { id: 'cart-7', ttlMs: 1000 })
  t.ok(await until(() => first.calls.length >= 2, 5000), 'retried')
  await worker.close()
  const second = recorder()
  const restarted = await testWorker(config, [second.handler])
  t.teardown(() => restarted.close())
  t.ok(await handled(store, 'cart-7'), 'handled by the restarted worker')
  const runs = [...first.calls, ...second.calls]
  t.ok(second.calls.length >= 1, 'the restarted worker ran it')
  t.same(new Set(runs.map((c) => c.idempotencyKey)).size, 1, `one key over ${runs.length} runs`)
})

t.test('a replayed dead letter runs with the key its dead runs had', async (t) => {
  const { config, store } = setup(t, { EXPIRY_MAX_ATTEMPTS: '1' })
  let fail = true
  const { calls, handler } = recorder(() => { if (fail) throw new Error('down') })
  const worker = await testWorker(config, [handler])
  t.teardown(() => worker.close())
  await createHold(store, { id: 'cart-9', ttlMs: 1000 })
  t.ok(await until(async () => (await getCheckout(store, 'cart-9')).outcome === 'dead', 5000), 'dead')
  fail = false
  const { shard, members } = await findDeadLetters(store, 'cart-9')
  t.equal(members.length, 1)
  t.ok(await replayDeadLetter(store, shard, members[0]!), 'replayed')
  t.ok(await handled(store, 'cart-9'), 'handled after the replay')
  t.equal(calls.length, 2)
  t.equal(calls[1]!.idempotencyKey, calls[0]!.idempotencyKey)
})

t.test('a layout recorded without an epoch gets one on first open, the same for processes racing to add it', async (t) => {
  const prefix = 'idem-old:'
  const old = { version: 1, prefix, shards: 16, since: '2025-01-01T00:00:00.000Z' }
  const client = redis.client()
  await client.set(`${prefix}layout`, JSON.stringify(old))
  const clients = Array.from({ length: 6 }, () => redis.client())
  t.teardown(async () => await Promise.all(clients.map(async (c) => await closeRedis(c))))
  const opened = await Promise.all(clients.map(async (c) => await openKeyspace(c, prefix, 16, quiet)))
  const keys = new Set(opened.map((k) => k.idempotencyKey('x', 1)))
  t.equal(keys.size, 1, 'every process agrees on the epoch')
  const recorded = JSON.parse(await client.get(`${prefix}layout`) ?? '{}') as Record<string, unknown>
  t.match(recorded, { ...old, epoch: /^[0-9a-f]{16}$/ }, 'the record keeps its fields and gains the epoch')
  t.equal(opened[0]!.idempotencyKey('x', 1), `x:${String(recorded.epoch)}:1`)
})

t.test('a record with a damaged epoch is refused, not replaced', async (t) => {
  const prefix = 'idem-bad:'
  const client = redis.client()
  const bad = JSON.stringify({ version: 1, prefix, shards: 16, since: '2025-01-01T00:00:00.000Z', epoch: 'not an epoch' })
  await client.set(`${prefix}layout`, bad)
  await t.rejects(openKeyspace(client, prefix, 16, quiet), { name: 'LayoutMismatchError', message: /invalid epoch/ })
  t.equal(await client.get(`${prefix}layout`), bad, 'left as it was')
})
