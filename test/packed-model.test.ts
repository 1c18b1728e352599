import { createHash, randomBytes } from 'node:crypto'
import fc from 'fast-check'
import type { Redis } from 'ioredis'
import t from 'tap'
import { createKeyspace, type Packing } from '../src/keys.js'
import { createRedis } from '../src/redis/connection.js'
import { createHold, endHold, extendHold, getCheckout } from '../src/store/checkout-store.js'
import { createStoreContext, type StoreContext } from '../src/store/context.js'
import { replayDeadLetter } from '../src/store/dead-letters.js'
import { ackJob, ackJobs, failJob, type Claimant, type ExpiryJob } from '../src/store/expiry-jobs.js'
import { openKeyspace, PREFIX_REGISTRY_KEY, readPacking } from '../src/store/layout.js'
import { listPendingHolds } from '../src/store/listing.js'
import { countPendingHolds, readQueueStats } from '../src/store/stats.js'
import { startRedis } from './helpers/redis.js'
import { claimAsOwner } from './helpers/own.js'

/**
 * Key format 3 against an in-memory model, with listpack limits so small
 * that buckets split, chains form and fingerprints (one hex digit) collide
 * at nearly every step. After each step: every bucket is still a listpack,
 * the deadline index holds exactly the pending holds with their deadlines
 * and in deadline order, and the bucket table counts them. Expiry jobs
 * handed out are acknowledged or failed (a retry, or dead at once), and
 * reads check what that recorded on the ended hold.
 */
const LIMITS = { 'hash-max-listpack-entries': 2, 'hash-max-listpack-value': 48, 'zset-max-listpack-entries': 4, 'zset-max-listpack-value': 32 }
const redis = await startRedis({ extraArgs: Object.entries(LIMITS).flatMap(([k, v]) => [`--${k}`, String(v)]) })
t.teardown(redis.stop)
const raw = redis.client()
const conn = createRedis({ url: redis.url, role: 'worker' })
t.teardown(() => { conn.disconnect() })

const silent = { warn: () => {} }
const serverPacking = await readPacking(raw, silent)
let packing: Packing = serverPacking
const claimant: Claimant = { token: 'model-worker', runningMs: 60_000, maxAttempts: 3 }

// Short ids go in buckets; ids longer than the value limits less the record header take their own key.
const IDS = [...Array.from({ length: 28 }, (_v, i) => `o${i}`), 'long-order-id-that-is-past-the-limit-1', 'long-order-id-that-is-past-the-limit-2']
const TTLS = [0, -5, -40, 60_000, 60_000, 61_000, 90_000]
const PAYLOADS = [undefined, { a: 'x' }, { blob: 'p'.repeat(200) }]

type Op =
  | { kind: 'create', id: string, ttl: number, payload: number }
  | { kind: 'get', id: string }
  | { kind: 'extend', id: string, ttl: number }
  | { kind: 'end', id: string, status: 'completed' | 'cancelled' }
  | { kind: 'claim' }
  | { kind: 'outcome', pick: number, how: 'ack' | 'retry' | 'dead' }

const id = fc.constantFrom(...IDS)
const ttl = fc.constantFrom(...TTLS)
const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('create' as const), id, ttl, payload: fc.nat({ max: PAYLOADS.length - 1 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('get' as const), id }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('extend' as const), id, ttl }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('end' as const), id, status: fc.constantFrom('completed' as const, 'cancelled' as const) }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'claim' as const }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('outcome' as const), pick: fc.nat({ max: 9 }), how: fc.constantFrom('ack' as const, 'retry' as const, 'dead' as const) }) }
)

interface Held {
  generation: number
  status: 'pending' | 'expired' | 'completed' | 'cancelled'
  createdAt: number
  deadline: number
  /** Its ttl was 0 or less: past its deadline from the start (the others outlast the test). */
  lapsed: boolean
  payload?: Record<string, unknown> | undefined
  /** An expired hold's handler outcome as acks and failures recorded it ('pending' until then). */
  outcome?: 'handled' | 'retrying' | 'dead'
  attempts?: number
  lastError?: string
}

const code = (err: unknown) => (err as { code?: string }).code

async function scan (r: Redis, pattern: string): Promise<string[]> {
  const keys: string[] = []
  let cursor = '0'
  do {
    const [next, found] = await r.scan(cursor, 'MATCH', pattern, 'COUNT', 1000)
    cursor = next
    keys.push(...found)
  } while (cursor !== '0')
  return keys
}

const indexMember = (hold: string) => hold.length + 18 > packing.hashValue || hold.length > packing.zsetValue
  ? `#${createHash('sha1').update(hold).digest('hex').slice(0, 20)}`
  : hold

/** The structural checks, after every step. */
async function checkLayout (ctx: StoreContext, model: Map<string, Held>): Promise<string | undefined> {
  const k = ctx.keys.shard(0)
  for (const key of await scan(raw, `${k.base}b:*`)) {
    const enc = await raw.object('ENCODING', key)
    if (enc !== 'listpack') return `${key} is ${String(enc)}`
    const chain = /^(.*)\.(\d+)$/.exec(key)
    if (chain && await raw.exists(Number(chain[2]) === 1 ? chain[1] as string : `${chain[1] as string}.${Number(chain[2]) - 1}`) === 0) return `${key} follows a hole`
  }
  const buckets = await raw.zrange(k.index, '0', '-1', 'WITHSCORES')
  const indexed = new Map<string, number>()
  let previousMax = -Infinity
  for (let i = 0; i < buckets.length; i += 2) {
    const key = `${k.base}i:${buckets[i] as string}`
    const bound = Number(buckets[i + 1])
    const enc = await raw.object('ENCODING', key)
    if (enc !== 'listpack') return `${key} is ${String(enc)}`
    const flat = await raw.zrange(key, '0', '-1', 'WITHSCORES')
    if (flat.length === 0) return `${key} is listed but empty`
    if (Number(flat[1]) < bound) return `${key} holds ${flat[1] as string} below its bound ${bound}`
    if (Number(flat[1]) < previousMax) return `${key} starts at ${flat[1] as string}, before the previous bucket's ${previousMax}`
    for (let j = 0; j < flat.length; j += 2) indexed.set(flat[j] as string, Number(flat[j + 1]))
    previousMax = Number(flat[flat.length - 1])
  }
  const pending = [...model].filter(([, h]) => h.status === 'pending')
  if (indexed.size !== pending.length) return `the index holds ${indexed.size} members, the model ${pending.length} pending holds`
  for (const [hold, h] of pending) {
    if (indexed.get(indexMember(hold)) !== h.deadline) return `${hold}: indexed at ${String(indexed.get(indexMember(hold)))}, deadline ${h.deadline}`
  }
  const n = Number(await raw.hget(k.table, 'n') ?? 0)
  if (n !== pending.length) return `the table counts ${n} holds, the model ${pending.length}`
  return undefined
}

/** Expiry jobs queued by calls other than claims, handed out by the next claim. */
const queued = new Set<string>()
/** Jobs handed out by claims and not yet acknowledged or failed. */
const running: ExpiryJob[] = []

/** Lapsed holds are expired by whichever call sees them first: the model does it on the same calls. */
const lapse = (hold: string, h: Held | undefined) => {
  if (h?.status !== 'pending' || !h.lapsed) return
  h.status = 'expired'
  queued.add(`${h.generation}:${hold}`)
}

async function step (ctx: StoreContext, model: Map<string, Held>, o: Op, seq: { n: number }): Promise<void> {
  const fail = (what: string) => { throw new Error(`${JSON.stringify(o)}: ${what}`) }
  if (o.kind === 'claim') {
    const result = await claimAsOwner(ctx, 0, 1000, claimant, seq.n++)
    const due = [...model].filter(([, h]) => h.status === 'pending' && h.lapsed)
    const expected = [...queued, ...due.map(([hold, h]) => `${h.generation}:${hold}`)].sort()
    const got = result.jobs.map((j) => `${j.attempt}/${j.member}`).sort()
    if (JSON.stringify(expected.map((m) => `1/${m}`)) !== JSON.stringify(got)) fail(`claimed ${got.join(',')}, model ${expected.join(',')}`)
    if (result.expired !== due.length) fail(`expired ${result.expired}, model ${due.length}`)
    for (const [hold, h] of due) {
      const job = result.jobs.find((j) => j.id === hold && j.generation === h.generation)
      if (job?.deadline !== h.deadline || JSON.stringify(job.payload) !== JSON.stringify(h.payload)) fail(`job of ${hold} differs from the hold`)
      h.status = 'expired'
    }
    queued.clear()
    running.push(...result.jobs)
    return
  }
  if (o.kind === 'outcome') {
    const job = running.splice(o.pick % Math.max(1, running.length), 1)[0]
    if (!job) return
    const error = `failed ${seq.n++}`
    const result = o.how === 'ack'
      ? await ackJob(ctx, job, claimant.token) ? 'handled' : 'claim-lost'
      : await failJob(ctx, job, claimant.token, error, o.how === 'dead' ? 1 : claimant.maxAttempts, 3_600_000)
    const want = o.how === 'ack' ? 'handled' : o.how === 'dead' ? 'dead' : 'retry'
    if (result !== want) fail(`${job.member}: ${result}`)
    // Recorded on the order only while it is still on the job's generation.
    const h = model.get(job.id)
    if (h?.generation === job.generation) {
      Object.assign(h, { outcome: want === 'retry' ? 'retrying' : want, attempts: job.attempt }, o.how === 'ack' ? {} : { lastError: error })
    }
    return
  }
  const before = model.get(o.id)
  if (o.kind === 'create') {
    const payload = PAYLOADS[o.payload]
    try {
      const view = await createHold(ctx, { id: o.id, ttlMs: o.ttl, payload })
      lapse(o.id, before)
      if (before?.status === 'pending') fail('created over a pending hold')
      if (before && view.generation <= before.generation) fail(`generation ${view.generation} after ${before.generation}`)
      model.set(o.id, { generation: view.generation, status: 'pending', createdAt: view.createdAt, deadline: view.expiresAt, lapsed: o.ttl <= 0, payload })
    } catch (err) {
      if (code(err) !== 'CHECKOUT_EXISTS') throw err
      if (before?.status !== 'pending') fail(`refused as held; model ${before?.status ?? 'unknown'}`)
    }
    return
  }
  if (o.kind === 'get') {
    try {
      const view = await getCheckout(ctx, o.id)
      if (!before) fail('found an unknown id')
      const status = before?.status === 'pending' && before.lapsed ? 'expired' : before?.status
      if (view.status !== status) fail(`status ${view.status}, model ${String(status)}`)
      if (view.generation !== before?.generation || view.expiresAt !== before.deadline) fail('generation or deadline differ')
      if (JSON.stringify(view.payload) !== JSON.stringify(before?.payload)) fail('payload differs')
      if (view.createdAt !== before?.createdAt) fail(`created at ${view.createdAt}, model ${String(before?.createdAt)}`)
      if ((view.endedAt === undefined) !== (before?.status === 'pending')) fail(`ended at ${String(view.endedAt)} while ${String(before?.status)}`)
      const recorded = { outcome: view.outcome, attempts: view.attempts, lastError: view.lastError }
      const modelled = status === 'expired'
        ? { outcome: before?.outcome ?? 'pending', attempts: before?.attempts, lastError: before?.lastError }
        : { outcome: undefined, attempts: undefined, lastError: undefined }
      if (JSON.stringify(recorded) !== JSON.stringify(modelled)) fail(`recorded ${JSON.stringify(recorded)}, model ${JSON.stringify(modelled)}`)
    } catch (err) {
      if (code(err) !== 'CHECKOUT_NOT_FOUND') throw err
      if (before) fail('not found, but the model holds it')
    }
    return
  }
  try {
    const done = o.kind === 'extend' ? await extendHold(ctx, o.id, o.ttl) : await endHold(ctx, o.id, o.status)
    if (before?.status !== 'pending' && !(o.kind === 'end' && before?.status === o.status)) fail(`acted on ${before?.status ?? 'unknown'}`)
    if (before?.lapsed === true && before.status === 'pending') fail('acted on a lapsed hold')
    if (o.kind === 'extend') {
      const view = done as Awaited<ReturnType<typeof extendHold>>
      if (view.generation !== before?.generation) fail('extended another generation')
      Object.assign(before as Held, { deadline: view.expiresAt, lapsed: o.ttl <= 0 })
    } else if (before?.status === 'pending') {
      before.status = o.status
    }
  } catch (err) {
    if (code(err) === 'CHECKOUT_NOT_FOUND') {
      if (before) fail('not found, but the model holds it')
    } else if (code(err) === 'CHECKOUT_NOT_PENDING') {
      const status = (err as { status?: string }).status ?? (err as { details?: { status?: string } }).details?.status
      if (before?.status === 'pending') {
        if (status !== 'expired' || !before.lapsed) fail(`refused as ${String(status)} while pending`)
        lapse(o.id, before)
      } else if (status !== before?.status) fail(`refused as ${String(status)}, model ${String(before?.status)}`)
    } else throw err
  }
}

t.test('format 3 matches the model and keeps every bucket a listpack', async (t) => {
  let runs = 0
  // Fingerprints of one hex digit collide often; of none, always (every hold of a bucket on its own chain key).
  await fc.assert(fc.asyncProperty(fc.constantFrom(0, 1), fc.array(op, { minLength: 10, maxLength: 100 }), async (fingerprintChars, ops) => {
    runs++
    packing = { ...serverPacking, fingerprintChars }
    const prefix = `m${randomBytes(4).toString('hex')}:`
    const ctx = createStoreContext(conn, createKeyspace(prefix, 1, 3, undefined, packing), 60_000)
    const model = new Map<string, Held>()
    const seq = { n: 1 }
    queued.clear()
    running.length = 0
    try {
      for (const o of ops) {
        await step(ctx, model, o, seq)
        const broken = await checkLayout(ctx, model)
        if (broken) throw new Error(`after ${JSON.stringify(o)}: ${broken}`)
      }
    } finally {
      const keys = await scan(raw, `${prefix}*`)
      if (keys.length > 0) await raw.del(...keys)
    }
  }), { numRuns: 150, interruptAfterTimeLimit: 15_000 })
  t.ok(runs >= 10, `${runs} random runs`)
})

t.test('an ended hold is one packed string, read and updated by every script as the order hash was', async (t) => {
  const prefix = `e${randomBytes(4).toString('hex')}:`
  t.teardown(async () => { const keys = await scan(raw, `${prefix}*`); if (keys.length > 0) await raw.del(...keys) })
  const ctx = createStoreContext(conn, createKeyspace(prefix, 1, 3, undefined, serverPacking), 60_000)
  const orderKey = (id: string) => ctx.keys.order(id).order

  const done = await createHold(ctx, { id: 'done', ttlMs: 60_000, payload: { n: 1 } })
  const ended = await endHold(ctx, 'done', 'completed')
  t.equal(await raw.type(orderKey('done')), 'string', 'a completed hold is one string')
  const ttl = await raw.pttl(orderKey('done'))
  t.ok(ttl > 0 && ttl <= 60_000, `kept for the retention (${ttl} ms left)`)
  t.match(await getCheckout(ctx, 'done'), {
    status: 'completed', generation: done.generation, createdAt: done.createdAt, expiresAt: done.expiresAt, endedAt: ended.endedAt, payload: { n: 1 }
  }, 'read back whole')
  t.equal((await endHold(ctx, 'done', 'completed')).endedAt, ended.endedAt, 'a retried complete answers from the string')
  await t.rejects(endHold(ctx, 'done', 'cancelled'), { code: 'CHECKOUT_NOT_PENDING' }, 'the other end is refused')

  const ids = ['acked', 'retried', 'dead']
  const created = new Map<string, number>()
  for (const id of ids) created.set(id, (await createHold(ctx, { id, ttlMs: 0 })).createdAt)
  const { jobs } = await claimAsOwner(ctx, 0, 10, claimant, 1)
  const job = (id: string) => jobs.find((j) => j.id === id) as ExpiryJob
  t.equal(jobs.length, 3, 'the lapsed holds are expired and handed out')
  t.equal(await raw.type(orderKey('acked')), 'string', 'an expired hold is one string')
  t.match(await getCheckout(ctx, 'acked'), { status: 'expired', outcome: 'pending', createdAt: created.get('acked') }, 'expired, outcome pending')

  t.same(await ackJobs(ctx, 0, claimant.token, [job('acked')]), [true], 'acknowledged')
  t.same(await ackJobs(ctx, 0, claimant.token, [job('acked')]), [true], 'the same ack sent again is recognised from the string')
  t.match(await getCheckout(ctx, 'acked'), { status: 'expired', outcome: 'handled', attempts: 1, handledAt: Number }, 'handled')
  t.equal(await failJob(ctx, job('retried'), claimant.token, 'try later', 3, 3_600_000), 'retry')
  t.match(await getCheckout(ctx, 'retried'), { outcome: 'retrying', attempts: 1, lastError: 'try later' }, 'retrying, with its error')
  t.equal(await failJob(ctx, job('dead'), claimant.token, 'gone for good', 1, 3_600_000), 'dead')
  t.match(await getCheckout(ctx, 'dead'), { outcome: 'dead', attempts: 1, lastError: 'gone for good' }, 'dead, with its error')
  t.ok(await replayDeadLetter(ctx, 0, job('dead').member), 'replayed')
  t.match(await getCheckout(ctx, 'dead'), { outcome: 'pending' }, 'a replay sets the outcome back to pending')
  const left = await raw.pttl(orderKey('acked'))
  t.ok(left > 0 && left <= 60_000, 'an update keeps the retention')

  const again = await createHold(ctx, { id: 'acked', ttlMs: 60_000 })
  t.ok(again.generation > job('acked').generation, 'a new hold of the id gets a newer generation')
  t.equal(await raw.exists(orderKey('acked')), 0, 'and the ended record is gone')
  t.equal(await ackJob(ctx, job('retried'), 'another-worker'), false, 'a lost claim still records nothing')
  t.match(await getCheckout(ctx, 'retried'), { outcome: 'retrying' }, 'unchanged')
})

t.test('the packing is read from the server', async (t) => {
  t.same(await readPacking(raw, silent), { hashEntries: 2, hashValue: 48, zsetEntries: 4, zsetValue: 32, fingerprintChars: 4 })
})

t.test('list pages through the two-level index in deadline order, long ids by name; stats count the holds', async (t) => {
  const prefix = `l${randomBytes(4).toString('hex')}:`
  const ctx = createStoreContext(conn, createKeyspace(prefix, 2, 3, undefined, serverPacking), 60_000)
  t.teardown(async () => { const keys = await scan(raw, `${prefix}*`); if (keys.length > 0) await raw.del(...keys) })
  const ids = [...Array.from({ length: 40 }, (_v, i) => `h${i}`), 'a-long-id-that-takes-its-own-key-in-format-3']
  for (const [i, hold] of ids.entries()) await createHold(ctx, { id: hold, ttlMs: 60_000 + (i % 7) * 1000 })
  await endHold(ctx, 'h3', 'cancelled')
  const seen: Array<{ shard: number, id: string, expiresAt: number }> = []
  let cursor: string | undefined
  for (let page = 0; page < 50; page++) {
    const got = await listPendingHolds(ctx, { limit: 3, cursor })
    seen.push(...got.items)
    cursor = got.next
    if (cursor === undefined) break
  }
  t.same(seen.map((h) => h.id).sort(), ids.filter((h) => h !== 'h3').sort(), 'every pending hold once, the long id by its name')
  for (let i = 1; i < seen.length; i++) {
    const [a, b] = [seen[i - 1], seen[i]] as [typeof seen[number], typeof seen[number]]
    if (a.shard === b.shard && a.expiresAt > b.expiresAt) t.fail(`${b.id} listed after ${a.id}, a later deadline`)
  }
  t.equal(await countPendingHolds(ctx), ids.length - 1, 'countPendingHolds')
  t.equal((await readQueueStats(ctx)).pending, ids.length - 1, 'checkoutctl stats')
})

t.test('the limits are recorded with a new format 3 prefix, and every later process uses the recorded ones', async (t) => {
  const prefix = `r${randomBytes(4).toString('hex')}:`
  t.teardown(async () => {
    await raw.config('SET', 'hash-max-listpack-value', '48')
    await raw.del(`${prefix}layout`)
    await raw.srem(PREFIX_REGISTRY_KEY, prefix)
  })
  const first = await openKeyspace(raw, prefix, 1, silent, 3)
  t.same(first.packing, serverPacking, 'read from the server')
  t.same(JSON.parse(await raw.get(`${prefix}layout`) ?? '{}').packing, serverPacking, 'recorded')
  await raw.config('SET', 'hash-max-listpack-value', '100')
  const later = await openKeyspace(raw, prefix, 1, silent, 3)
  t.same(later.packing, serverPacking, 'a later process follows the record, not the server settings of now')
})
