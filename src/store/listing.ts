import type { RedisClient } from '../redis/connection.js'
import type { StoreContext } from './context.js'
import { readDeadLetters, type DeadLetter } from './dead-letters.js'
import { direct, serverTime } from './direct.js'
import { idOfMember, pagePackedIndex } from './packed-index.js'

/**
 * Cursor paging over one sorted set per shard (the deadline indexes, the
 * dead-letter sets), in shard order, then score, then member: never KEYS,
 * never a whole set in memory.
 *
 * A cursor is `<shard>` (start of that shard) or `<shard>:<score>:<member>`
 * (resume after that entry). Resuming by score and member rather than by
 * offset means entries removed while a script pages (holds that expire, dead
 * letters replayed) never make it skip one that stays; entries present
 * throughout are listed exactly once.
 */
export class InvalidCursorError extends Error {
  override name = 'InvalidCursorError'
}

export interface Page<T> {
  items: T[]
  /** Pass it back to get the next page; undefined after the last one. */
  next: string | undefined
}

export interface PageOptions {
  limit: number
  cursor?: string | undefined
  /** Only entries scored at most this (e.g. dead letters that died before a replay began). */
  maxScore?: number | undefined
}

interface Entry {
  shard: number
  member: string
  score: number
}

interface Position {
  shard: number
  after?: { score: string, member: string } | undefined
}

export function parseCursor (cursor: string, shards: number): Position {
  const match = /^(\d+)(?::(-?\d+(?:\.\d+)?):(.+))?$/.exec(cursor)
  const shard = Number(match?.[1])
  if (!match || shard >= shards) throw new InvalidCursorError(`invalid cursor "${cursor}": expected <shard> or <shard>:<score>:<member> with shard below ${shards}`)
  return match[2] === undefined ? { shard } : { shard, after: { score: match[2], member: match[3] as string } }
}

const isAfter = (e: { score: number, member: string }, after: { score: string, member: string }) =>
  e.score > Number(after.score) || (e.score === Number(after.score) && e.member > after.member)

/** Ties at one score are rare (same ms); a window that holds only entries already seen is widened this many times at most. */
const MAX_WIDENINGS = 10

/** One shard's next entries after a position; `more` when the shard may hold further ones. */
async function pageShard (
  redis: RedisClient, key: string, after: Position['after'], limit: number, maxScore: number | undefined
): Promise<{ entries: Array<{ member: string, score: number }>, more: boolean }> {
  const max = maxScore === undefined ? '+inf' : String(maxScore)
  // Entries at the cursor's score that were already listed come first in the window: make room for them.
  let window = limit + (after ? await redis.zcount(key, after.score, after.score) : 0)
  for (let round = 0; round <= MAX_WIDENINGS; round++) {
    const flat = await redis.zrangebyscore(key, after?.score ?? '-inf', max, 'WITHSCORES', 'LIMIT', 0, window)
    const entries: Array<{ member: string, score: number }> = []
    for (let i = 0; i + 1 < flat.length; i += 2) {
      const e = { member: flat[i] as string, score: Number(flat[i + 1]) }
      if (!after || isAfter(e, after)) entries.push(e)
    }
    const full = flat.length / 2 >= window
    if (entries.length > 0 || !full) return { entries: entries.slice(0, limit), more: full || entries.length > limit }
    window *= 4
  }
  throw new Error(`${key}: more entries share the score ${after?.score} than a page can skip`)
}

type ShardPager = (shard: number, after: Position['after'], limit: number, maxScore: number | undefined) =>
  Promise<{ entries: Array<{ member: string, score: number }>, more: boolean }>

/** Up to `limit` entries across shards from the cursor on, and the cursor of the rest. */
export async function pageShards (
  ctx: StoreContext, keyOf: (shard: number) => string, opts: PageOptions,
  pager: ShardPager = async (shard, after, limit, maxScore) => await pageShard(ctx.redis, keyOf(shard), after, limit, maxScore)
): Promise<Page<Entry>> {
  const start = parseCursor(opts.cursor ?? '0', ctx.keys.shards)
  const limit = Math.max(1, Math.floor(opts.limit))
  const items: Entry[] = []
  for (let shard = start.shard; shard < ctx.keys.shards; shard++) {
    const after = shard === start.shard ? start.after : undefined
    const { entries, more } = await direct(ctx, async () => await pager(shard, after, limit - items.length, opts.maxScore))
    for (const e of entries) items.push({ shard, ...e })
    const last = items[items.length - 1]
    if (more && last) return { items, next: `${shard}:${last.score}:${last.member}` }
    if (items.length >= limit) return { items, next: shard + 1 < ctx.keys.shards ? String(shard + 1) : undefined }
  }
  return { items, next: undefined }
}

export interface PendingHold {
  shard: number
  id: string
  expiresAt: number
  /** Time left (server clock); 0 for a hold past its deadline that a worker has not expired yet. */
  remainingMs: number
}

/** Pending holds from the deadline indexes: shard by shard, earliest deadline first. */
export async function listPendingHolds (ctx: StoreContext, opts: PageOptions): Promise<Page<PendingHold>> {
  const packed = ctx.keys.format === 3
  const page = packed
    ? await pageShards(ctx, (shard) => ctx.keys.shard(shard).index, opts, async (shard, after, limit, maxScore) =>
      await pagePackedIndex(ctx.redis, ctx.keys.shard(shard), after, limit, maxScore))
    : await pageShards(ctx, (shard) => ctx.keys.shard(shard).deadlines, opts)
  const now = await serverTime(ctx)
  const items: PendingHold[] = []
  for (const e of page.items) {
    // Format 3 indexes a long id by a hash of it; its record names it. A hold that ended meanwhile is left out.
    const id = packed ? await direct(ctx, async () => await idOfMember(ctx.redis, ctx.keys.shard(e.shard), e.member)) : e.member
    if (id !== undefined) items.push({ shard: e.shard, id, expiresAt: e.score, remainingMs: Math.max(0, e.score - now) })
  }
  return { items, next: page.next }
}

/** Dead letters from the dead-letter sets: shard by shard, oldest first. */
export async function listDeadLetterPage (ctx: StoreContext, opts: PageOptions): Promise<Page<DeadLetter>> {
  const page = await pageShards(ctx, (shard) => ctx.keys.shard(shard).dead, opts)
  const byShard = new Map<number, string[]>()
  for (const e of page.items) byShard.set(e.shard, [...byShard.get(e.shard) ?? [], e.member])
  const items: DeadLetter[] = []
  for (const [shard, members] of byShard) items.push(...await readDeadLetters(ctx, shard, members))
  return { items, next: page.next }
}
