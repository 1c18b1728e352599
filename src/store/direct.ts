import { Errors } from '../errors.js'
import { isRedisUnavailable } from '../redis/errors.js'
import type { StoreContext } from './context.js'

/**
 * Plain Redis commands (reads, ZRANGE paging, HINCRBY) get the same treatment
 * as scripts run through `run`: a refusing context fails at once, and a Redis
 * outage becomes REDIS_UNAVAILABLE instead of a defect.
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
