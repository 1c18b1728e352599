import type { Redis } from 'ioredis'
import { Errors } from '../errors.js'
import type { Keyspace } from '../keys.js'
import { isRedisUnavailable } from '../redis/errors.js'
import { defineScripts, runScript, type ScriptName } from './scripts.js'

/**
 * What every store function needs: a connection, the key layout and the
 * retention of ended holds. The API, the worker, a CLI or a Lambda handler
 * each build one and pass it in.
 */
export interface StoreContext {
  redis: Redis
  keys: Keyspace
  retentionMs: number
  /** Set when this process must not touch the data (its key layout does not match it): every call fails with it. */
  refusal?: Error
}

export function createStoreContext (redis: Redis, keys: Keyspace, retentionMs: number): StoreContext {
  defineScripts(redis)
  return { redis, keys, retentionMs }
}

/** Runs a script; a Redis outage becomes REDIS_UNAVAILABLE, anything else stays a defect. */
export async function run (
  ctx: StoreContext, name: ScriptName, keys: string[], args: Array<string | number>
): Promise<unknown[]> {
  if (ctx.refusal) throw ctx.refusal
  try {
    return await runScript(ctx.redis, name, keys, args)
  } catch (err) {
    if (isRedisUnavailable(err)) throw new Errors.REDIS_UNAVAILABLE({ cause: err })
    throw err
  }
}
