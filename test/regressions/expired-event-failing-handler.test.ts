import t from 'tap'
import { parseEventEntry, type LifecycleEvent } from '../../src/events/schema.js'
import { loadHandlers, type NamedHandler } from '../../src/expiry/handlers.js'
import { createKeyspace, type KeyFormat } from '../../src/keys.js'
import { closeRedis, createRedis } from '../../src/redis/connection.js'
import { createHold, getCheckout } from '../../src/store/checkout-store.js'
import { createStoreContext } from '../../src/store/context.js'
import { testConfig } from '../helpers/app.js'
import { startRedis } from '../helpers/redis.js'
import { testWorker, until } from '../helpers/worker.js'

/**
 * Every generation ends with completed, cancelled or expired
 * (docs/events.md), whatever the handlers do: a handler that fails before
 * `stream` in EXPIRY_HANDLERS used to keep the `expired` event from ever
 * being written. The event is recorded with the expiry itself, once.
 */
const redis = await startRedis()
t.teardown(redis.stop)
const MAXLEN = 10_000

t.test('a failing handler before stream: each generation has its expired event exactly once', async (t) => {
  const config = testConfig(redis.url, { EVENT_STREAM: 'true', EXPIRY_BACKOFF_MS: '20', EXPIRY_MAX_ATTEMPTS: '2' })
  const conn = createRedis({ url: config.REDIS_URL, role: 'worker' })
  t.teardown(() => closeRedis(conn))
  const store = createStoreContext(conn, createKeyspace(config.KEY_PREFIX, config.KEY_SHARDS, config.KEY_FORMAT as KeyFormat), config.CHECKOUT_RESULT_RETENTION_MS,
    { events: { maxLen: MAXLEN } })
  // Fails every run of `always-*`, the first run of anything else; notes the idempotency keys handed to it.
  const keys = new Map<string, string>()
  const failing: NamedHandler = {
    name: 'reserve',
    handle: (event) => {
      keys.set(`${event.id}/${event.generation}`, event.idempotencyKey)
      if (event.id.startsWith('always') || event.attempt === 1) throw new Error('stock service said 500')
    }
  }
  const stream = await loadHandlers('stream', { stream: { redis: conn, key: store.keys.events, maxLen: MAXLEN } })
  const worker = await testWorker(config, [failing, ...stream])
  t.teardown(() => worker.close(1000))

  const first = await createHold(store, { id: 'always-1', ttlMs: 1000, payload: { cart: ['a'] } })
  const once = await createHold(store, { id: 'once-1', ttlMs: 1000 })
  t.ok(await until(async () => (await getCheckout(store, 'always-1')).outcome === 'dead', 10_000), 'always-1 dead')
  t.ok(await until(async () => (await getCheckout(store, 'once-1')).outcome === 'handled', 10_000), 'once-1 handled on its retry')
  const second = await createHold(store, { id: 'always-1', ttlMs: 1000 })
  t.ok(await until(async () => (await getCheckout(store, 'always-1')).outcome === 'dead', 10_000), 'its next generation dead too')

  const read = async (): Promise<LifecycleEvent[]> =>
    (await conn.xrange(store.keys.events, '-', '+')).map(([, fields]) => parseEventEntry(fields))
  const published = async () => (await read()).filter((e) => e.type === 'dead').length === 2
  t.ok(await until(published, 5000), 'the relay published both dead events')
  // Room for a late copy (a relay pass is 250 ms) to show up before counting.
  await new Promise((resolve) => setTimeout(resolve, 600))
  const events = await read()
  const of = (id: string, generation: number) => events.filter((e) => e.orderId === id && e.generation === generation).map((e) => e.type)
  t.same(of('always-1', first.generation), ['created', 'expired', 'dead'], 'first generation: expired once, before dead')
  t.same(of('always-1', second.generation), ['created', 'expired', 'dead'], 'second generation: expired once, before dead')
  t.same(of('once-1', once.generation), ['created', 'expired'], 'a retried run writes no second expired event')
  for (const [id, hold] of [['always-1', first], ['always-1', second], ['once-1', once]] as const) {
    t.match(events.find((e) => e.type === 'expired' && e.orderId === id && e.generation === hold.generation), {
      eventId: `${keys.get(`${id}/${hold.generation}`) ?? 'no run'}:expired`,
      expiresAt: new Date(hold.expiresAt).toISOString()
    }, `${id} generation ${hold.generation}: the eventId is <idempotencyKey>:expired`)
  }
})
