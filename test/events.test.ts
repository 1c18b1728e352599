import { Value } from '@sinclair/typebox/value'
import calculateSlot from 'cluster-key-slot'
import type { RedisClient } from '../src/redis/connection.js'
import { pino } from 'pino'
import t, { type Test } from 'tap'
import type { Config } from '../src/config.js'
import { startEventRelay, type EventRelayOptions } from '../src/events/relay.js'
import { LifecycleEvent, parseEventEntry } from '../src/events/schema.js'
import { createKeyspace, type KeyFormat } from '../src/keys.js'
import { closeRedis, createRedis } from '../src/redis/connection.js'
import { createHold, endHold, extendHold } from '../src/store/checkout-store.js'
import { createStoreContext, type StoreContext } from '../src/store/context.js'
import { failJob } from '../src/store/expiry-jobs.js'
import { testConfig } from './helpers/app.js'
import { startRedis } from './helpers/redis.js'
import { capturingLogger, until } from './helpers/worker.js'
import { claimAsOwner } from './helpers/own.js'

/**
 * Lifecycle events: each state change appends its event to the shard's
 * outbox in the same script; the relay moves them to `<prefix>events`,
 * where a consumer group reads each once, in order per order.
 */
const redis = await startRedis()
t.teardown(redis.stop)
const silent = pino({ level: 'silent' })
const MAXLEN = 10_000

function eventStore (t: Test, config: Config, events = true): StoreContext {
  const conn = createRedis({ url: config.REDIS_URL, role: 'worker' })
  t.teardown(() => closeRedis(conn))
  const keys = createKeyspace(config.KEY_PREFIX, config.KEY_SHARDS, config.KEY_FORMAT as KeyFormat)
  return createStoreContext(conn, keys, config.CHECKOUT_RESULT_RETENTION_MS, events ? { events: { maxLen: MAXLEN } } : {})
}

async function outboxTotal (store: StoreContext): Promise<number> {
  let total = 0
  for (let shard = 0; shard < store.keys.shards; shard++) total += await store.redis.xlen(store.keys.shard(shard).outbox)
  return total
}

/** Runs relays until every outbox is empty, then stops them. */
async function relayAll (t: Test, stores: StoreContext[], opts: Partial<EventRelayOptions> = {}): Promise<void> {
  const relays = stores.map((store) => startEventRelay({ store, log: silent, maxLen: MAXLEN, intervalMs: 20, ...opts }))
  t.ok(await until(async () => await outboxTotal(stores[0]!) === 0, 10_000), 'the outboxes drain')
  await Promise.all(relays.map(async (r) => await r.stop()))
}

type Entry = [id: string, fields: string[]]

/** Reads the whole stream as a consumer group does: XGROUP CREATE … MKSTREAM, XREADGROUP, XACK. */
async function consume (conn: RedisClient, key: string, group: string): Promise<LifecycleEvent[]> {
  await conn.xgroup('CREATE', key, group, '0', 'MKSTREAM')
  const events: LifecycleEvent[] = []
  for (let round = 0; round < 1000; round++) {
    const reply = await conn.xreadgroup('GROUP', group, 'consumer-1', 'COUNT', 500, 'STREAMS', key, '>') as Array<[string, Entry[]]> | null
    const entries = reply?.[0]?.[1] ?? []
    if (entries.length === 0) break
    for (const [, fields] of entries) events.push(parseEventEntry(fields))
    await conn.xack(key, group, ...entries.map(([id]) => id))
  }
  const pending = await conn.xpending(key, group) as [number, ...unknown[]]
  if (pending[0] !== 0) throw new Error(`${pending[0]} entries left unacknowledged`)
  return events
}

const sleep = async (ms: number) => await new Promise((resolve) => setTimeout(resolve, ms))
const lease = { token: 'worker-a', runningMs: 10_000, maxAttempts: 1 }

t.test('every lifecycle event reaches the stream once, in order per order, schema-valid', async (t) => {
  const config = testConfig(redis.url, { KEY_SHARDS: '4' })
  const store = eventStore(t, config)
  const payload = { cart: ['sku-1'], email: 'someone@example.com' }

  const held = await createHold(store, { id: 'ev-done', ttlMs: 60_000, payload })
  const extended = await extendHold(store, 'ev-done', 120_000)
  await endHold(store, 'ev-done', 'completed')
  await endHold(store, 'ev-done', 'completed') // a retry of an ended hold changes nothing
  await createHold(store, { id: 'ev-gone', ttlMs: 60_000 })
  await endHold(store, 'ev-gone', 'cancelled')

  // Two jobs that dead-letter: one whose last run fails, one whose last run never reports back.
  // In another shard than ev-failed, so the claim below does not take it.
  const failedShard = store.keys.shardOf('ev-failed')
  const lostId = Array.from({ length: 20 }, (_v, i) => `ev-lost-${i}`).find((id) => store.keys.shardOf(id) !== failedShard)!
  await createHold(store, { id: 'ev-failed', ttlMs: 1000 })
  await createHold(store, { id: lostId, ttlMs: 1000 })
  await sleep(1050)
  const [failed] = (await claimAsOwner(store, failedShard, 10, lease, 1)).jobs.filter((j) => j.id === 'ev-failed')
  t.equal(await failJob(store, failed!, lease.token, 'stock service said 500', 1, 0), 'dead')
  const lostShard = store.keys.shardOf(lostId)
  const quick = { ...lease, token: 'worker-b', runningMs: 1 }
  const claimed = await claimAsOwner(store, lostShard, 10, quick, 1)
  t.ok(claimed.jobs.some((j) => j.id === lostId), 'claimed once')
  await sleep(10)
  await claimAsOwner(store, lostShard, 10, quick, 2) // past the safety net with its attempts used up: dead-lettered here

  t.ok(await outboxTotal(store) > 0, 'the events wait in the outboxes')
  t.equal(await store.redis.exists(store.keys.events), 0, 'nothing reaches the stream without a relay')
  await relayAll(t, [store])

  const events = await consume(store.redis, store.keys.events, 'test-group')
  t.ok(events.every((e) => Value.Check(LifecycleEvent, e)), 'every event matches the schema')
  t.equal(new Set(events.map((e) => e.eventId)).size, events.length, 'no event twice')
  const byOrder = (id: string) => events.filter((e) => e.orderId === id)
  t.same(byOrder('ev-done').map((e) => e.type), ['created', 'extended', 'completed'])
  t.same(byOrder('ev-gone').map((e) => e.type), ['created', 'cancelled'])
  t.same(byOrder('ev-failed').map((e) => e.type), ['created', 'expired', 'dead'])
  t.same(byOrder(lostId).map((e) => e.type), ['created', 'expired', 'dead'])
  t.equal(events.length, 11, 'nothing else')

  const [created, ext, completed] = byOrder('ev-done')
  t.match(created, {
    v: 1, generation: held.generation, at: new Date(held.createdAt).toISOString(),
    expiresAt: new Date(held.expiresAt).toISOString(), ttlMs: 60_000, payloadBytes: Buffer.byteLength(JSON.stringify(payload))
  })
  t.match(ext, { generation: held.generation, expiresAt: new Date(extended.expiresAt).toISOString(), ttlMs: 120_000 })
  t.match(completed, { generation: held.generation })
  t.match(created?.eventId, new RegExp(`^${store.keys.shardOf('ev-done')}-\\d+-\\d+$`), 'eventId is <shard>-<outbox entry id>')
  t.notMatch(JSON.stringify(events), /someone@example\.com/, 'no payload contents')
  t.match(byOrder('ev-failed')[2], { attempts: 1, lastError: 'stock service said 500' })
  t.match(byOrder(lostId)[2], { attempts: 1, lastError: /never reported back/ })

  const raw = await store.redis.xrange(store.keys.events, '-', '+', 'COUNT', 1)
  t.same(raw[0]?.[1].filter((_v, i) => i % 2 === 0), ['eventId', 'type', 'data'], 'an entry is eventId, type and data')
})

t.test('an expiry is recorded with its expired event by whichever script sees it first', async (t) => {
  const config = testConfig(redis.url, { KEY_SHARDS: '4' })
  const store = eventStore(t, config)
  const holds = new Map<string, number>()
  for (const id of ['x-claim', 'x-end', 'x-extend', 'x-create']) {
    holds.set(id, (await createHold(store, { id, ttlMs: 1000, payload: { cart: [id] } })).generation)
  }
  await sleep(1050)
  await t.rejects(endHold(store, 'x-end', 'completed'), { code: 'CHECKOUT_NOT_PENDING' })
  await t.rejects(extendHold(store, 'x-extend', 60_000), { code: 'CHECKOUT_NOT_PENDING' })
  const again = await createHold(store, { id: 'x-create', ttlMs: 60_000 })
  const shard = store.keys.shardOf('x-claim')
  t.ok((await claimAsOwner(store, shard, 10, lease, 1)).jobs.some((j) => j.id === 'x-claim'), 'claimed')
  await relayAll(t, [store])

  const events = await consume(store.redis, store.keys.events, 'expiry-group')
  t.ok(events.every((e) => Value.Check(LifecycleEvent, e)), 'every event matches the schema')
  for (const [id, generation] of holds) {
    t.same(events.filter((e) => e.orderId === id && e.generation === generation).map((e) => e.type), ['created', 'expired'], id)
    t.match(events.find((e) => e.orderId === id && e.type === 'expired'), {
      eventId: `${store.keys.idempotencyKey(id, generation)}:expired`,
      payloadBytes: Buffer.byteLength(JSON.stringify({ cart: [id] }))
    }, `${id}: eventId <idempotencyKey>:expired, the payload's size`)
  }
  t.same(events.filter((e) => e.orderId === 'x-create').map((e) => [e.type, e.generation]),
    [['created', holds.get('x-create')], ['expired', holds.get('x-create')], ['created', again.generation]],
    'the expiry of the old hold comes before the new hold')
})

t.test('a request replayed with its Idempotency-Key writes no second event', async (t) => {
  const config = testConfig(redis.url, { KEY_SHARDS: '2' })
  const store = eventStore(t, config)
  const idem = (key: string) => ({ key, fingerprint: `fp-${key}` })
  const first = await createHold(store, { id: 'ev-idem', ttlMs: 60_000 }, idem('c'))
  const again = await createHold(store, { id: 'ev-idem', ttlMs: 60_000 }, idem('c'))
  t.equal(again.replayed, true)
  t.equal(again.generation, first.generation)
  await extendHold(store, 'ev-idem', 90_000, idem('x'))
  t.equal((await extendHold(store, 'ev-idem', 90_000, idem('x'))).replayed, true)
  await endHold(store, 'ev-idem', 'cancelled', idem('d'))
  t.equal((await endHold(store, 'ev-idem', 'cancelled', idem('d'))).replayed, true)
  await relayAll(t, [store])
  const events = await consume(store.redis, store.keys.events, 'idem-group')
  t.same(events.map((e) => e.type), ['created', 'extended', 'cancelled'])
})

t.test('with events off no script writes an event', async (t) => {
  const config = testConfig(redis.url, { KEY_SHARDS: '2' })
  const store = eventStore(t, config, false)
  await createHold(store, { id: 'quiet-1', ttlMs: 60_000 })
  await extendHold(store, 'quiet-1', 90_000)
  await endHold(store, 'quiet-1', 'completed')
  await createHold(store, { id: 'quiet-2', ttlMs: 1000 })
  await sleep(1050)
  const shard = store.keys.shardOf('quiet-2')
  const [job] = (await claimAsOwner(store, shard, 10, lease, 1)).jobs
  t.equal(await failJob(store, job!, lease.token, 'boom', 1, 0), 'dead')
  t.equal(await outboxTotal(store), 0, 'no outbox entry')
  const found = await store.redis.keys(`${config.KEY_PREFIX}*outbox*`)
  t.same(found, [], 'no outbox key')
  t.equal(await store.redis.exists(store.keys.events), 0, 'no events stream')
})

t.test('two relays at once publish every event once', async (t) => {
  const config = testConfig(redis.url, { KEY_SHARDS: '4' })
  const store = eventStore(t, config)
  const other = eventStore(t, config)
  const HOLDS = 2000
  for (let i = 0; i < HOLDS; i += 200) {
    await Promise.all(Array.from({ length: 200 }, async (_v, j) => await createHold(store, { id: `many-${i + j}`, ttlMs: 60_000 })))
  }
  t.equal(await outboxTotal(store), HOLDS)
  await relayAll(t, [store, other, store], { batchSize: 10, intervalMs: 1 })
  const events = await consume(store.redis, store.keys.events, 'pair-group')
  t.equal(events.length, HOLDS, 'as many events as holds')
  t.equal(new Set(events.map((e) => e.eventId)).size, events.length, 'none twice')
  t.equal(new Set(events.map((e) => e.orderId)).size, HOLDS, 'every order')
})

t.test('the outbox and the relay lock live in the slot of their shard', async (t) => {
  const keys = createKeyspace('ce:', 16)
  for (const id of ['a', 'order-1001', 'x.y_z:1-2']) {
    const k = keys.order(id)
    t.equal(new Set([k.order, k.outbox, k.relayLock].map((key) => calculateSlot(key))).size, 1, id)
  }
  t.equal(keys.events, 'ce:events')
})

t.test('the relay stops within its bound while Redis does not answer', async (t) => {
  const config = testConfig(redis.url, { KEY_SHARDS: '2' })
  const store = eventStore(t, config)
  await createHold(store, { id: 'paused', ttlMs: 60_000 })
  const blocker = redis.client()
  // CLIENT PAUSE holds every write: the relay reads the outbox length, then hangs on its first script.
  await blocker.client('PAUSE', 1500, 'WRITE')
  const relay = startEventRelay({ store, log: silent, maxLen: MAXLEN, intervalMs: 5, stopTimeoutMs: 200 })
  await sleep(100)
  t.equal(relay.stats.relayed, 0, 'the pass is held up')
  const started = Date.now()
  await relay.stop()
  t.ok(Date.now() - started < 1000, `stopped in ${Date.now() - started} ms`)
  await sleep(1500) // the pause ends; the held pass finishes
  t.equal(await outboxTotal(store), 0, 'the pass under way at stop still finished its round')
})

t.test('events Redis refuses to take stay in the outbox, in order, until it takes them', async (t) => {
  const config = testConfig(redis.url, { KEY_SHARDS: '1' })
  const store = eventStore(t, config)
  for (const id of ['r-1', 'r-2', 'r-3']) await createHold(store, { id, ttlMs: 60_000 })
  await store.redis.set(store.keys.events, 'not a stream')
  const { log, lines } = capturingLogger()
  const relay = startEventRelay({ store, log, maxLen: MAXLEN, intervalMs: 10 })
  t.teardown(relay.stop)
  t.ok(await until(() => lines.some((l) => l.msg === 'could not publish an event'), 2000), 'retried')
  t.equal(lines.filter((l) => l.level === 40).length, 1, 'one warning, however often it is retried')
  t.equal(await outboxTotal(store), 3, 'nothing left the outbox')
  await store.redis.del(store.keys.events)
  t.ok(await until(async () => await outboxTotal(store) === 0, 2000), 'published once Redis takes them')
  await relay.stop()
  const events = await consume(store.redis, store.keys.events, 'refused-group')
  t.same(events.map((e) => e.orderId), ['r-1', 'r-2', 'r-3'])
})

t.test('an outbox entry of an unknown kind is logged and dropped, and the rest go on', async (t) => {
  const config = testConfig(redis.url, { KEY_SHARDS: '1' })
  const store = eventStore(t, config)
  await createHold(store, { id: 'u-1', ttlMs: 60_000 })
  await store.redis.xadd(store.keys.shard(0).outbox, '*', 't', 'refunded', 'i', 'u-1', 'g', '1', 'at', '1')
  await endHold(store, 'u-1', 'cancelled')
  const { log, lines } = capturingLogger()
  const relay = startEventRelay({ store, log, maxLen: MAXLEN, intervalMs: 10 })
  t.ok(await until(async () => await outboxTotal(store) === 0, 2000))
  await relay.stop()
  t.match(lines.find((l) => l.level === 50), { msg: /unknown kind/, fields: { t: 'refunded' } })
  t.same(relay.stats, { relayed: 2, dropped: 1 })
  t.same((await consume(store.redis, store.keys.events, 'unknown-group')).map((e) => e.type), ['created', 'cancelled'])
})

t.test('an idle relay sends one XLEN per shard per interval and nothing else', async (t) => {
  const config = testConfig(redis.url, { KEY_SHARDS: '4' })
  const store = eventStore(t, config)
  const stats = redis.client()
  const calls = async () => {
    const info = await stats.info('commandstats')
    const count = (cmd: string) => Number(new RegExp(`cmdstat_${cmd}:calls=(\\d+)`).exec(info)?.[1] ?? 0)
    return { xlen: count('xlen'), scripts: count('evalsha') + count('eval'), xadd: count('xadd') }
  }
  await stats.config('RESETSTAT')
  const relay = startEventRelay({ store, log: silent, maxLen: MAXLEN, intervalMs: 100 })
  await sleep(1000)
  await relay.stop()
  const { xlen, scripts, xadd } = await calls()
  t.ok(xlen >= 4 * 5 && xlen <= 4 * 11 && xlen % 4 === 0, `${xlen} XLEN in 1 s over 4 shards`)
  t.equal(scripts + xadd, 0, 'no script, no XADD')
})

t.test('a shard locked by a relay that died is relayed once its lock lapses', async (t) => {
  const config = testConfig(redis.url, { KEY_SHARDS: '1' })
  const store = eventStore(t, config)
  await createHold(store, { id: 'orphan', ttlMs: 60_000 })
  await store.redis.set(store.keys.shard(0).relayLock, 'a-relay-that-died', 'PX', 400)
  const relay = startEventRelay({ store, log: silent, maxLen: MAXLEN, intervalMs: 20 })
  t.teardown(relay.stop)
  await sleep(250)
  t.equal(await outboxTotal(store), 1, 'not while the lock holds')
  t.ok(await until(async () => await outboxTotal(store) === 0, 2000), 'relayed after it lapsed')
  t.equal(await store.redis.exists(store.keys.shard(0).relayLock), 0, 'the lock is given back when done')
})
