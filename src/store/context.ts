import type { Keyspace } from '../keys.js'
import type { RedisClient } from '../redis/connection.js'
import { direct } from './direct.js'
import type { ReadCache } from './read-cache.js'
import { defineScripts, runScript, type ScriptName } from './scripts.js'

/**
 * What every store function needs: a connection, the key layout and the
 * retention of ended holds. The API, the worker, a CLI or a Lambda handler
 * each build one and pass it in.
 */
export interface StoreContext {
  redis: RedisClient
  /** Where reads that may be stale go (GET /checkout/:id with REDIS_READ_FROM=replica); else `redis`. */
  reader?: RedisClient
  /** After each API write, WAIT for this many replicas (REDIS_WAIT_REPLICAS); absent: no WAIT. */
  waitReplicas?: WaitReplicas
  keys: Keyspace
  retentionMs: number
  /** Present when lifecycle events are on (EVENT_STREAM): the scripts then append them to their shard's outbox. */
  events?: EventSettings
  /** READ_CACHE: GET /checkout/:id is served from this cache, filled through its tracked connection. */
  readCache?: ReadCacheSettings
  /** Set when this process must not touch the data (its key layout does not match it): every call fails with it. */
  refusal?: Error
}

export interface EventSettings {
  /** The events stream is trimmed to about this many entries (EVENT_STREAM_MAXLEN). */
  maxLen: number
}

export interface ReadCacheSettings {
  cache: ReadCache
  /** The connection Redis tracks the cached keys on (CLIENT TRACKING); only cached reads use it. */
  reader: RedisClient
  /**
   * Resolves once every invalidation Redis had sent this process when it was
   * called has been applied: a PING on the invalidation connection, whose
   * reply Redis queues behind them. What a caller that needs read-your-writes
   * across replicas waits for (and what the tests use).
   */
  settled: () => Promise<void>
  /**
   * Asks that tracking cover reads of `keys`' layout (key format 3 needs
   * another tracking mode); true once it does, false meanwhile (read uncached).
   */
  follow: (keys: Keyspace) => boolean
}

export interface WaitReplicas {
  replicas: number
  timeoutMs: number
}

export interface StoreOptions {
  /** Lifecycle events on; without it no script writes an event. */
  events?: EventSettings | undefined
  reader?: RedisClient | undefined
  waitReplicas?: WaitReplicas | undefined
  readCache?: ReadCacheSettings | undefined
}

export function createStoreContext (redis: RedisClient, keys: Keyspace, retentionMs: number, opts: StoreOptions = {}): StoreContext {
  defineScripts(redis)
  if (opts.reader) defineScripts(opts.reader)
  if (opts.readCache) defineScripts(opts.readCache.reader)
  return {
    redis,
    keys,
    retentionMs,
    ...(opts.events ? { events: { maxLen: opts.events.maxLen } } : {}),
    ...(opts.reader ? { reader: opts.reader } : {}),
    ...(opts.readCache ? { readCache: { ...opts.readCache } } : {}),
    ...(opts.waitReplicas && opts.waitReplicas.replicas > 0 ? { waitReplicas: { ...opts.waitReplicas } } : {})
  }
}

/**
 * The ARGV the scripts take for the outbox: 0 when events are off, else the
 * outbox's approximate MAXLEN. Each shard's outbox may hold as many entries
 * as the whole events stream keeps, so it only ever trims while no relay has
 * run for that long (docs/events.md).
 */
export function outboxCap (ctx: StoreContext): number {
  return ctx.events ? ctx.events.maxLen : 0
}

/** Runs a script; a Redis outage becomes REDIS_UNAVAILABLE, anything else stays a defect (see direct). */
export async function run (
  ctx: StoreContext, name: ScriptName, keys: string[], args: Array<string | number>, on: RedisClient = ctx.redis
): Promise<unknown[]> {
  return await direct(ctx, async () => await runScript(on, name, keys, args))
}
