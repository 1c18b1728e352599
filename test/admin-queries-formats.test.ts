import t from 'tap'
import { createKeyspace, type KeyFormat } from '../src/keys.js'
import { createRedis } from '../src/redis/connection.js'
import { countDueWithin, deadlineHistogram, earliestDeadline, pageHoldsByDeadline } from '../src/store/admin-queries.js'
import { createHold, endHold } from '../src/store/checkout-store.js'
import { createStoreContext, type StoreContext } from '../src/store/context.js'
import { readPacking } from '../src/store/layout.js'
import { startRedis } from './helpers/redis.js'

/**
 * What the admin API reads about pending holds (counts by due time, the
 * deadline histogram, the earliest deadline, pages in deadline order), on
 * key format 1 and on format 3, against the holds as created. The listpack
 * limits are tiny, so format 3 spreads one shard's holds over many index
 * buckets and long ids take keys of their own.
 */
const LIMITS = { 'hash-max-listpack-entries': 4, 'hash-max-listpack-value': 48, 'zset-max-listpack-entries': 4, 'zset-max-listpack-value': 32 }
const redis = await startRedis({ extraArgs: Object.entries(LIMITS).flatMap(([k, v]) => [`--${k}`, String(v)]) })
t.teardown(redis.stop)
const conn = createRedis({ url: redis.url, role: 'worker' })
t.teardown(() => { conn.disconnect() })
const packing = await readPacking(conn, { warn: () => {} })

const SHARDS = 2
const sleep = async (ms: number) => await new Promise((resolve) => setTimeout(resolve, ms))

interface Made { id: string, expiresAt: number }

/** 60 holds over two minutes (a few sharing a due second), 4 lapsed, 3 with ids too long for a bucket, 5 ended. */
async function populate (ctx: StoreContext): Promise<Made[]> {
  const made: Made[] = []
  const ids = [
    ...Array.from({ length: 53 }, (_v, i) => `ord-${i}`),
    ...Array.from({ length: 3 }, (_v, i) => `long-${i}-${'x'.repeat(60)}`),
    ...Array.from({ length: 4 }, (_v, i) => `lapse-${i}`)
  ]
  for (const [i, id] of ids.entries()) {
    const ttlMs = id.startsWith('lapse-') ? 20 : 5_000 + (i % 23) * 5_000 + (i % 3)
    const view = await createHold(ctx, { id, ttlMs })
    made.push({ id, expiresAt: view.expiresAt })
  }
  for (const id of ['ord-1', 'ord-7', 'ord-20', 'long-1-' + 'x'.repeat(60), 'ord-33']) {
    await endHold(ctx, id, id === 'ord-7' ? 'cancelled' : 'completed')
  }
  await sleep(60) // the lapse-* holds pass their deadline; no worker runs, so they stay in the index
  const ended = new Set(['ord-1', 'ord-7', 'ord-20', 'long-1-' + 'x'.repeat(60), 'ord-33'])
  return made.filter((m) => !ended.has(m.id))
}

const byDeadline = (a: Made, b: Made) => a.expiresAt - b.expiresAt

for (const format of [1, 3] as KeyFormat[]) {
  t.test(`key format ${format}: counts, histogram, earliest deadline and pages match the pending holds`, async (t) => {
    const ctx = createStoreContext(conn, createKeyspace(`adminq${format}:`, SHARDS, format, undefined, packing), 60_000)
    const pending = await populate(ctx)
    if (format === 3) {
      const buckets = await conn.zcard(ctx.keys.shard(0).index) + await conn.zcard(ctx.keys.shard(1).index)
      t.ok(buckets >= 6, `the holds span many index buckets (${buckets})`)
    }

    const due = await countDueWithin(ctx, [10_000, 60_000, 3_600_000])
    const overdue = pending.filter((m) => m.expiresAt <= due.now).length
    t.equal(overdue, 4, 'the lapsed holds are overdue')
    t.equal(due.overdue, overdue, 'overdue count')
    for (const w of due.within) {
      t.equal(w.count, pending.filter((m) => m.expiresAt > due.now && m.expiresAt <= due.now + w.windowMs).length, `due within ${w.windowMs} ms`)
    }

    const histogram = await deadlineHistogram(ctx, { bucketMs: 7_000, buckets: 20 })
    const expected = histogram.counts.map((_c, i) => pending.filter((m) =>
      m.expiresAt >= histogram.from + i * 7_000 && m.expiresAt < histogram.from + (i + 1) * 7_000).length)
    t.same(histogram.counts, expected, 'histogram buckets')

    t.equal(await earliestDeadline(ctx), Math.min(...pending.map((m) => m.expiresAt)), 'earliest deadline')

    // Every page of 7 in turn: all pending holds once each, in deadline order.
    const seen: Made[] = []
    let cursor: string | undefined
    for (let page = 0; page < 20; page++) {
      const p = await pageHoldsByDeadline(ctx, { limit: 7, cursor })
      seen.push(...p.items.map((h) => ({ id: h.id, expiresAt: h.expiresAt })))
      cursor = p.next
      if (cursor === undefined) break
    }
    t.equal(cursor, undefined, 'the pages come to an end')
    t.same([...seen].sort((a, b) => a.id < b.id ? -1 : 1), [...pending].sort((a, b) => a.id < b.id ? -1 : 1), 'each pending hold once, with its deadline')
    t.same(seen.map((m) => m.expiresAt), [...pending].sort(byDeadline).map((m) => m.expiresAt), 'in deadline order')

    const long = await pageHoldsByDeadline(ctx, { limit: 50, prefix: 'long-' })
    t.same(long.items.map((h) => h.id).sort(), pending.filter((m) => m.id.startsWith('long-')).map((m) => m.id).sort(),
      'a prefix search finds ids too long for a bucket by their own id')
  })
}
