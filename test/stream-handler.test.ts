import { pino } from 'pino'
import t from 'tap'
import { parseEventEntry } from '../src/events/schema.js'
import { loadHandlers, type BuiltInSettings, type ExpiryEvent } from '../src/expiry/handlers.js'
import { createKeyspace, type KeyFormat } from '../src/keys.js'
import { closeRedis, createRedis } from '../src/redis/connection.js'
import { createHold, getCheckout } from '../src/store/checkout-store.js'
import { createStoreContext } from '../src/store/context.js'
import { testConfig } from './helpers/app.js'
import { startRedis } from './helpers/redis.js'
import { testWorker, until } from './helpers/worker.js'

/**
 * The built-in `stream` handler is kept for EXPIRY_HANDLERS written for
 * earlier releases: it needs EVENT_STREAM and writes nothing, since the
 * script that records an expiry records its `expired` event too.
 */
const redis = await startRedis()
t.teardown(redis.stop)
const MAXLEN = 10_000

const event: ExpiryEvent = {
  id: 'order-9',
  payload: { cart: ['sku-1'] },
  deadline: '2026-01-01T00:00:00.000Z',
  expiredAt: '2026-01-01T00:00:00.005Z',
  attempt: 1,
  generation: 7,
  idempotencyKey: 'order-9:7'
}

t.test('EXPIRY_HANDLERS=stream needs EVENT_STREAM', async (t) => {
  await t.rejects(loadHandlers('stream'), /names "stream": set EVENT_STREAM=true/)
})

t.test('the stream handler writes nothing itself', async (t) => {
  const config = testConfig(redis.url)
  const conn = createRedis({ url: config.REDIS_URL, role: 'worker' })
  t.teardown(() => closeRedis(conn))
  const settings: BuiltInSettings = { stream: { redis: conn, key: `${config.KEY_PREFIX}events`, maxLen: MAXLEN } }
  const [stream] = await loadHandlers('stream', settings)
  await stream!.handle(event, { log: pino({ level: 'silent' }), signal: new AbortController().signal })
  t.equal(await conn.exists(`${config.KEY_PREFIX}events`), 0)
})

t.test('through a worker listing stream first and last: one expired event per expiry', async (t) => {
  const config = testConfig(redis.url, { EVENT_STREAM: 'true' })
  const conn = createRedis({ url: config.REDIS_URL, role: 'worker' })
  t.teardown(() => closeRedis(conn))
  const store = createStoreContext(conn, createKeyspace(config.KEY_PREFIX, config.KEY_SHARDS, config.KEY_FORMAT as KeyFormat), config.CHECKOUT_RESULT_RETENTION_MS,
    { events: { maxLen: MAXLEN } })
  const settings: BuiltInSettings = { stream: { redis: conn, key: store.keys.events, maxLen: MAXLEN } }
  const worker = await testWorker(config, await loadHandlers('stream,log,stream', settings))
  t.teardown(() => worker.close(500))

  const hold = await createHold(store, { id: 'st-1', ttlMs: 1000, payload: { cart: ['a'] } })
  t.ok(await until(async () => (await getCheckout(store, 'st-1')).outcome === 'handled', 5000), 'handled')
  const expired = async () => (await conn.xrange(store.keys.events, '-', '+')).map(([, f]) => parseEventEntry(f)).filter((e) => e.type === 'expired')
  t.ok(await until(async () => (await expired()).length > 0, 5000), 'published')
  await new Promise((resolve) => setTimeout(resolve, 600))
  t.match(await expired(), [{
    orderId: 'st-1', generation: hold.generation, eventId: new RegExp(`^st-1:[0-9a-f]{16}:${hold.generation}:expired$`),
    expiresAt: new Date(hold.expiresAt).toISOString(), payloadBytes: Buffer.byteLength(JSON.stringify({ cart: ['a'] }))
  }])
  t.equal((await expired()).length, 1, 'once')
})
