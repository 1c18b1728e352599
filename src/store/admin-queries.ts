import type { RedisClient } from '../redis/connection.js'
import type { StoreContext } from './context.js'
import { direct, serverTime } from './direct.js'
import { idOfMember, pagePackedIndex } from './packed-index.js'

/**
 * What the admin API reads about holds and the deadline index. Each question
 * is one function here, so a new data layout re-implements these and the
 * API and dashboard stay as they are. Formats 1 and 2: one deadline ZSET
 * per shard (`<base>deadlines`, member order id, score deadline in ms).
 * Format 3: per shard a top ZSET of index buckets (`<base>index`, member
 * bucket number, score its lowest deadline) over bucket ZSETs of at most
 * 128 members (`<base>i:<n>`, src/store/packed-index.ts). Every read is
 * ZCOUNT or a bounded ZRANGE BYSCORE, never KEYS, never a whole bucket set.
 */
export class InvalidHoldCursorError extends Error {
  override name = 'InvalidHoldCursorError'
}

/** Counts index entries with a score in [min, max] (ZCOUNT bounds: `-inf`, `(123`, `123`). */
type Counter = (min: string, max: string) => Promise<number>

/** A bound of ZCOUNT as a number, for choosing the format 3 buckets it can touch (exclusion does not matter there). */
const boundValue = (bound: string): number => bound === '-inf' ? -Infinity : bound === '+inf' ? Infinity : Number(bound.replace(/^\(/, ''))

/**
 * A counter over every shard's index: one ZCOUNT per shard, or in format 3
 * one per index bucket whose range meets [min, max]. Format 3 reads the top
 * sets once, so a histogram of many ranges costs one top read per shard.
 * The calls of one count leave in one tick (auto-pipelining).
 */
async function indexCounter (ctx: StoreContext): Promise<Counter> {
  const shards = Array.from({ length: ctx.keys.shards }, (_v, shard) => ctx.keys.shard(shard))
  const sum = (counts: number[]) => counts.reduce((a, b) => a + b, 0)
  if (ctx.keys.format !== 3) {
    return async (min, max) => sum(await direct(ctx, async () => await Promise.all(shards.map(async (k) => await ctx.redis.zcount(k.deadlines, min, max)))))
  }
  const tops = await direct(ctx, async () => await Promise.all(shards.map(async (k) => await ctx.redis.zrange(k.index, '0', '-1', 'WITHSCORES'))))
  // Bucket n holds deadlines from its bound up to the next bucket's bound (equal deadlines may sit in both).
  const ranges = shards.flatMap((k, shard) => {
    const top = tops[shard] as string[]
    const out: Array<{ key: string, low: number, high: number }> = []
    for (let i = 0; i + 1 < top.length; i += 2) {
      out.push({ key: `${k.base}i:${top[i] as string}`, low: Number(top[i + 1]), high: i + 3 < top.length ? Number(top[i + 3]) : Infinity })
    }
    return out
  })
  return async (min, max) => {
    const low = boundValue(min)
    const high = boundValue(max)
    const touched = ranges.filter((r) => r.low <= high && r.high >= low)
    return sum(await direct(ctx, async () => await Promise.all(touched.map(async (r) => await ctx.redis.zcount(r.key, min, max)))))
  }
}

export interface DueCounts {
  now: number
  /** Past their deadline and not expired yet (a worker is about to, or none runs). */
  overdue: number
  /** Deadline within the next `windowMs` (after now), one count per window asked for. */
  within: Array<{ windowMs: number, count: number }>
}

export async function countDueWithin (ctx: StoreContext, windowsMs: readonly number[]): Promise<DueCounts> {
  const [now, count] = await Promise.all([serverTime(ctx), indexCounter(ctx)])
  const [overdue, ...within] = await Promise.all([
    count('-inf', String(now)),
    ...windowsMs.map(async (w) => await count(`(${now}`, String(now + w)))
  ])
  return { now, overdue: overdue ?? 0, within: windowsMs.map((windowMs, i) => ({ windowMs, count: within[i] ?? 0 })) }
}

export interface DeadlineHistogram {
  /** Start of the first bucket (server time, ms): now, rounded down to the bucket width. */
  from: number
  bucketMs: number
  /** Holds whose deadline falls in [from + i·bucketMs, from + (i+1)·bucketMs). */
  counts: number[]
}

/** At most this many buckets: shards × buckets ZCOUNTs per call. */
export const MAX_HISTOGRAM_BUCKETS = 120

/** Index counts per time bucket from now on: ZCOUNT per bucket and shard, no hold is read. */
export async function deadlineHistogram (ctx: StoreContext, opts: { bucketMs: number, buckets: number }): Promise<DeadlineHistogram> {
  const buckets = Math.min(MAX_HISTOGRAM_BUCKETS, Math.max(1, Math.floor(opts.buckets)))
  const bucketMs = Math.max(1, Math.floor(opts.bucketMs))
  const [now, count] = await Promise.all([serverTime(ctx), indexCounter(ctx)])
  const from = now - (now % bucketMs)
  const counts = await Promise.all(Array.from({ length: buckets }, async (_v, i) =>
    await count(String(from + i * bucketMs), `(${from + (i + 1) * bucketMs}`)))
  return { from, bucketMs, counts }
}

/** The earliest deadline still in the index (server ms), undefined when it is empty. */
export async function earliestDeadline (ctx: StoreContext): Promise<number | undefined> {
  const firsts = await direct(ctx, async () => await Promise.all(Array.from({ length: ctx.keys.shards }, async (_v, shard) =>
    (await shardEntriesAfter(ctx, shard, undefined, 1)).entries[0]?.score)))
  const scores = firsts.filter((s): s is number => s !== undefined)
  return scores.length === 0 ? undefined : Math.min(...scores)
}

export interface HoldRow {
  id: string
  shard: number
  expiresAt: number
  remainingMs: number
}

export interface HoldPage {
  now: number
  items: HoldRow[]
  /** Pass back for the next page; undefined when every shard was read to its end. */
  next: string | undefined
  /** Index entries looked at for this page (a prefix search skips the ones that do not match). */
  scanned: number
}

interface Position { score: number, member: string }

const isAfter = (e: Position, after: Position | undefined) =>
  after === undefined || e.score > after.score || (e.score === after.score && e.member > after.member)

/** `<deadline ms>:<order id>`: the last hold listed; the next page starts after it. */
export function parseHoldCursor (cursor: string): Position {
  const match = /^(\d{1,16}):(.+)$/.exec(cursor)
  if (!match) throw new InvalidHoldCursorError(`invalid cursor "${cursor}": expected <deadline ms>:<order id>`)
  return { score: Number(match[1]), member: match[2] as string }
}

/** Up to `n` entries of one index after a position, in (score, member) order. */
async function entriesAfter (redis: RedisClient, key: string, after: Position | undefined, n: number): Promise<{ entries: Position[], done: boolean }> {
  // Entries at the position's own score that come before it are skipped: make room for them.
  let window = n + (after ? await redis.zcount(key, after.score, after.score) : 0)
  for (let round = 0; round < 8; round++) {
    const flat = await redis.zrangebyscore(key, after?.score ?? '-inf', '+inf', 'WITHSCORES', 'LIMIT', 0, window)
    const entries: Position[] = []
    for (let i = 0; i + 1 < flat.length; i += 2) {
      const e = { member: flat[i] as string, score: Number(flat[i + 1]) }
      if (isAfter(e, after)) entries.push(e)
    }
    const full = flat.length / 2 >= window
    if (entries.length > 0 || !full) return { entries: entries.slice(0, n), done: !full && entries.length <= n }
    window *= 4
  }
  throw new Error(`${key}: more entries share one deadline than a page can skip`)
}

/** Up to `n` entries of one shard's index after a position: format 3 reads its buckets in order. */
async function shardEntriesAfter (ctx: StoreContext, shard: number, after: Position | undefined, n: number): Promise<{ entries: Position[], done: boolean }> {
  const k = ctx.keys.shard(shard)
  if (ctx.keys.format !== 3) return await entriesAfter(ctx.redis, k.deadlines, after, n)
  const from = after === undefined ? undefined : { score: String(after.score), member: after.member }
  const { entries, more } = await pagePackedIndex(ctx.redis, k, from, n, undefined)
  return { entries, done: !more }
}

/**
 * Pending holds in deadline order across every shard (a merge of the shard
 * indexes), optionally only ids that start with `prefix`, from `cursor` on.
 * Each call looks at no more than `scanLimit` index entries: a prefix that
 * matches few holds answers a short (even empty) page with a cursor to go on
 * from. Resuming after (deadline, id) means holds that leave or join the
 * index meanwhile never make a page skip or repeat one that stays.
 */
export async function pageHoldsByDeadline (
  ctx: StoreContext, opts: { limit: number, cursor?: string | undefined, prefix?: string | undefined, scanLimit?: number }
): Promise<HoldPage> {
  const start = opts.cursor === undefined ? undefined : parseHoldCursor(opts.cursor)
  const limit = Math.max(1, Math.floor(opts.limit))
  const scanLimit = Math.max(limit, opts.scanLimit ?? 5000)
  const chunk = Math.min(500, Math.max(limit + 1, 50))
  const prefix = opts.prefix ?? ''
  const shards = Array.from({ length: ctx.keys.shards }, (_v, shard) => ({ shard, buffer: [] as Position[], after: start, done: false }))
  const now = await serverTime(ctx)
  const items: HoldRow[] = []
  let last: Position | undefined
  let scanned = 0
  await direct(ctx, async () => {
    while (items.length < limit && scanned < scanLimit) {
      await Promise.all(shards.map(async (s) => {
        if (s.buffer.length > 0 || s.done) return
        const { entries, done } = await shardEntriesAfter(ctx, s.shard, s.after, chunk)
        s.buffer = entries
        s.done = done
        if (entries.length > 0) s.after = entries[entries.length - 1]
      }))
      let best = -1
      for (const [i, s] of shards.entries()) {
        const head = s.buffer[0]
        const top = shards[best]?.buffer[0]
        if (head && (!top || !isAfter(head, top))) best = i
      }
      if (best < 0) break
      const e = shards[best]?.buffer.shift() as Position
      last = e
      scanned++
      // Format 3 names a long id by its hash (`#<hash>`) in the index: the id is in its record.
      const id = e.member.startsWith('#') ? await idOfMember(ctx.redis, ctx.keys.shard(best), e.member) : e.member
      if (id !== undefined && id.startsWith(prefix)) items.push({ id, shard: best, expiresAt: e.score, remainingMs: Math.max(0, e.score - now) })
    }
  })
  const exhausted = shards.every((s) => s.done && s.buffer.length === 0)
  return { now, items, next: exhausted || last === undefined ? undefined : `${last.score}:${last.member}`, scanned }
}

export interface JobRecord {
  member: string
  generation: number
  deadline: number
  expiredAt: number
  /** The attempt of the current or last run (attempt numbers go on counting after a replay). */
  attempt: number
  /** The worker that holds the claim now, if one does. */
  holder: string | undefined
  lastError: string | undefined
  diedAt: number | undefined
}

/** The expiry job of one generation of an order, or undefined when there is none (never expired, or handled and gone). */
export async function readJobRecord (ctx: StoreContext, id: string, generation: number): Promise<JobRecord | undefined> {
  const member = `${generation}:${id}`
  const [i, d, x, a, l, e, f] = await direct(ctx, async () =>
    await ctx.redis.hmget(ctx.keys.order(id).job(member), 'i', 'd', 'x', 'a', 'l', 'e', 'f'))
  if (i === null || i === undefined) return undefined
  const opt = (v: string | null | undefined) => v === null || v === undefined || v === '' ? undefined : v
  return {
    member,
    generation,
    deadline: Number(d),
    expiredAt: Number(x),
    attempt: Number(a),
    holder: opt(l),
    lastError: opt(e),
    diedAt: opt(f) === undefined ? undefined : Number(f)
  }
}
