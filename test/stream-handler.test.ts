import { Value } from '@sinclair/typebox/value'
import { pino } from 'pino'
import t, { type Test } from 'tap'
import type { Config } from '../src/config.js'
import { LifecycleEvent, parseEventEntry } from '../src/events/schema.js'
import { loadHandlers, type BuiltInSettings, type ExpiryEvent } from '../src/expiry/handlers.js'
import { closeRedis, createRedis } from '../src/redis/connection.js'
import { createHold, getCheckout } from '../src/store/checkout-store.js'
import { testConfig } from './helpers/app.js'
import { startRedis } from './helpers/redis.js'
import { testStore, testWorker, until } from './helpers/worker.js'

/**
 * The built-in `stream` handler writes each expiry as an `expired` event to
 * `<prefix>events`; a write Redis refuses fails the run, which is retried
 * and dead-lettered like any failing handler.
 */
const redis = await startRedis()
t.teardown(redis.stop)
const MAXLEN = 10_000

function streamSettings (t: Test, config: Config): Required<Pick<BuiltInSettings, 'stream'>> {
  const conn = createRedis({ url: config.REDIS_URL, role: 'worker' })
  t.teardown(() => closeRedis(conn))
  return { stream: { redis: conn, key: `${config.KEY_PREFIX}events`, maxLen: MAXLEN } }
}

const event: ExpiryEvent = {
  id: 'order-9',
  payload: { email: 'someone@example.com', cart: ['sku-1'] },
  deadline: '2026-01-01T00:00:00.000Z',
  expiredAt: '2026-01-01T00:00:00.005Z',
  attempt: 1,
  generation: 7,
  idempotencyKey: 'order-9:7'
}
const ctx = () => ({ log: pino({ level: 'silent' }), signal: new AbortController().signal })

t.test('EXPIRY_HANDLERS=stream needs EVENT_STREAM', async (t) => {
  await t.rejects(loadHandlers('stream'), /names "stream": set EVENT_STREAM=true/)
})

t.test('an expiry becomes one expired event, without payload contents', async (t) => {
  const config = testConfig(redis.url)
  const settings = streamSettings(t, config)
  const [stream] = await loadHandlers('stream', settings)
  await stream!.handle(event, ctx())
  const entries = await settings.stream.redis.xrange(settings.stream.key, '-', '+')
  t.equal(entries.length, 1)
  const parsed = parseEventEntry(entries[0]![1])
  t.ok(Value.Check(LifecycleEvent, parsed))
  t.same(parsed, {
    v: 1,
    eventId: 'order-9:7:expired',
    type: 'expired',
    orderId: 'order-9',
    generation: 7,
    at: event.expiredAt,
    expiresAt: event.deadline,
    payloadBytes: Buffer.byteLength(JSON.stringify(event.payload))
  })
  t.notMatch(JSON.stringify(entries), /someone@example\.com/)

  await stream!.handle({ ...event, attempt: 2 }, ctx())
  const again = await settings.stream.redis.xrange(settings.stream.key, '-', '+')
  t.same(again.map(([, f]) => parseEventEntry(f).eventId), ['order-9:7:expired', 'order-9:7:expired'],
    'a retried run writes the same eventId, for consumers to drop')
})

t.test('a write Redis refuses fails the handler', async (t) => {
  const config = testConfig(redis.url)
  const settings = streamSettings(t, config)
  await settings.stream.redis.set(settings.stream.key, 'not a stream')
  const [stream] = await loadHandlers('stream', settings)
  await t.rejects(async () => await stream!.handle(event, ctx()), /stream .*events: WRONGTYPE/)
})

t.test('an aborted run stops waiting for Redis', async (t) => {
  const config = testConfig(redis.url)
  const settings = streamSettings(t, config)
  const [stream] = await loadHandlers('stream', settings)
  const blocker = redis.client()
  await blocker.client('PAUSE', 1000, 'WRITE')
  const abort = new AbortController()
  const run = stream!.handle(event, { log: pino({ level: 'silent' }), signal: abort.signal })
  setTimeout(() => abort.abort(), 50)
  const started = Date.now()
  await t.rejects(async () => await run, /aborted before Redis answered/)
  t.ok(Date.now() - started < 500, 'rejected at the abort, not when Redis answered')
  await new Promise((resolve) => setTimeout(resolve, 1000))
})

t.test('through a worker: the expired event is written, and a refused write dead-letters the order', async (t) => {
  const config = testConfig(redis.url, { EXPIRY_BACKOFF_MS: '20', EXPIRY_MAX_ATTEMPTS: '2' })
  const store = testStore(config)
  t.teardown(() => closeRedis(store.redis))
  const settings = streamSettings(t, config)
  const worker = await testWorker(config, await loadHandlers('stream', settings))
  t.teardown(() => worker.close(500))

  const hold = await createHold(store, { id: 'st-1', ttlMs: 1000, payload: { cart: ['a'] } })
  t.ok(await until(async () => (await getCheckout(store, 'st-1')).outcome === 'handled', 5000), 'handled')
  const entries = await store.redis.xrange(settings.stream.key, '-', '+')
  t.match(entries.map(([, f]) => parseEventEntry(f)), [{
    type: 'expired', orderId: 'st-1', generation: hold.generation, eventId: new RegExp(`^st-1:[0-9a-f]{16}:${hold.generation}:expired$`),
    expiresAt: new Date(hold.expiresAt).toISOString()
  }])

  await store.redis.del(settings.stream.key)
  await store.redis.set(settings.stream.key, 'not a stream')
  await createHold(store, { id: 'st-2', ttlMs: 1000 })
  t.ok(await until(async () => (await getCheckout(store, 'st-2')).outcome === 'dead', 5000), 'dead after its attempts')
  t.match(await getCheckout(store, 'st-2'), { attempts: 2, lastError: /WRONGTYPE/ })
})
