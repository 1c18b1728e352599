import type { StoreContext } from './context.js'
import { countDeadLetters } from './dead-letters.js'
import { countAcrossShards, direct, serverTime } from './direct.js'
import { countPacked } from './packed-index.js'

/**
 * Counters an operator reads with `checkoutctl stats`. The workers keep how
 * they found each expiry (keyspace event or sweep) in memory and add it here
 * from time to time; the queue figures are read from the shards on demand.
 */
export interface Found {
  event: number
  sweep: number
}

export interface Stats {
  found: Found
}

export interface QueueStats {
  /** Holds in the deadline indexes (pending, or past their deadline and about to be expired). */
  pending: number
  deadLetters: number
  jobs: {
    /** Expiry jobs queued: due, running or waiting for a retry. */
    total: number
    /** Due now: waiting for a worker. */
    due: number
    /** Held by a live worker (src/store/membership.ts). */
    running: number
  }
}

/** One hash for the whole prefix: a plain HINCRBY outside any shard, fine on Redis Cluster. */
const statsKey = (ctx: StoreContext) => `${ctx.keys.prefix}stats`

/** Adds expiries found since the last call, by how they were found. */
export async function recordFound (ctx: StoreContext, found: Found): Promise<void> {
  if (found.event === 0 && found.sweep === 0) return
  const key = statsKey(ctx)
  const replies = await direct(ctx, async () =>
    await ctx.redis.multi().hincrby(key, 'found:event', found.event).hincrby(key, 'found:sweep', found.sweep).exec())
  // A transaction reports a failed command in its replies rather than by throwing.
  const failed = replies?.find(([err]) => err)?.[0]
  if (failed) throw failed
}

export async function readStats (ctx: StoreContext): Promise<Stats> {
  const [event, sweep] = await direct(ctx, async () => await ctx.redis.hmget(statsKey(ctx), 'found:event', 'found:sweep'))
  return { found: { event: Number(event ?? 0), sweep: Number(sweep ?? 0) } }
}

async function shardQueue (ctx: StoreContext, shard: number, now: number, workers: readonly string[]): Promise<Omit<QueueStats, 'deadLetters'>> {
  const k = ctx.keys.shard(shard)
  return await direct(ctx, async () => {
    const [pending, total, due] = await Promise.all([
      ctx.keys.format === 3 ? countPacked(ctx.redis, k) : ctx.redis.zcard(k.deadlines),
      ctx.redis.zcard(k.jobs),
      ctx.redis.zcount(k.jobs, '-inf', now)
    ])
    const held = await Promise.all(workers.map(async (token) => await ctx.redis.scard(k.held(token))))
    return { pending, jobs: { total, due, running: held.reduce((a, b) => a + b, 0) } }
  })
}

/** Pending holds, dead letters and expiry jobs over every shard: a few O(1) or O(log n) commands per shard. */
export async function readQueueStats (ctx: StoreContext): Promise<QueueStats> {
  const now = await serverTime(ctx)
  // Live workers have a positive beat number; gone ones a negative score.
  const workers = await direct(ctx, async () => await ctx.redis.zrangebyscore(ctx.keys.members, '(0', '+inf'))
  const shards = await Promise.all(Array.from({ length: ctx.keys.shards }, async (_v, shard) => await shardQueue(ctx, shard, now, workers)))
  const sum = (pick: (s: Omit<QueueStats, 'deadLetters'>) => number) => shards.reduce((a, s) => a + pick(s), 0)
  return {
    pending: sum((s) => s.pending),
    deadLetters: await countDeadLetters(ctx),
    jobs: { total: sum((s) => s.jobs.total), due: sum((s) => s.jobs.due), running: sum((s) => s.jobs.running) }
  }
}

/** Pending holds over all shards: the ZCARD of every deadline index (format 3: the count of every bucket table). */
export async function countPendingHolds (ctx: StoreContext): Promise<number> {
  if (ctx.keys.format !== 3) return await countAcrossShards(ctx, (shard) => ctx.keys.shard(shard).deadlines)
  const counts = await direct(ctx, async () => await Promise.all(Array.from({ length: ctx.keys.shards }, async (_v, shard) =>
    await countPacked(ctx.redis, ctx.keys.shard(shard)))))
  return counts.reduce((a, b) => a + b, 0)
}
