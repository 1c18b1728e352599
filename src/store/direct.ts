import { Errors } from '../errors.js'
import { isRedisUnavailable } from '../redis/errors.js'
import type { StoreContext } from './context.js'

/**
 * Every store call goes through here, scripts (`run`) and plain commands
 * (reads, ZRANGE paging, HINCRBY) alike: a refusing context fails at once,
 * and a Redis outage becomes REDIS_UNAVAILABLE instead of a defect.
 */
export async function direct<T> (ctx: StoreContext, call: () => Promise<T>): Promise<T> {
  if (ctx.refusal) throw ctx.refusal
  try {
    return await call()
  } catch (err) {
    if (isRedisUnavailable(err)) throw new Errors.REDIS_UNAVAILABLE({ cause: err })
    throw err
  }
}

/** Redis server time in ms: the clock every deadline and dead-letter score is written with. */
export async function serverTime (ctx: StoreContext): Promise<number> {
  const [seconds, micros] = await direct(ctx, async () => await ctx.redis.time())
  return Number(seconds) * 1000 + Math.floor(Number(micros) / 1000)
}

/**
 * The sum of ZCARD of one sorted set per shard (pending holds, dead letters):
 * the calls go out in one tick, so auto-pipelining makes them one round trip
 * (per node on a cluster, where one explicit pipeline could not span slots).
 */
export async function countAcrossShards (ctx: StoreContext, keyOf: (shard: number) => string): Promise<number> {
  const counts = await direct(ctx, async () => await Promise.all(Array.from({ length: ctx.keys.shards }, async (_v, shard) =>
    await ctx.redis.zcard(keyOf(shard)))))
  return counts.reduce((a, b) => a + b, 0)
}
