import { Redis, type Cluster } from 'ioredis'
import type { Logger } from 'pino'
import { watch } from './factory.js'
import { DEFAULT_TIMEOUTS, roleOptions, type RedisRole } from './options.js'

/**
 * A connection the store can run on: one node (standalone, or the primary
 * behind Sentinel) or a Redis Cluster. Store functions only use commands
 * both offer; every script and command touches keys of one slot.
 */
export type RedisClient = Redis | Cluster

/** Any pino-compatible logger (fastify's request logger included). */
export type Log = Pick<Logger, 'info' | 'warn' | 'error' | 'debug'>

export type { RedisRole } from './options.js'

export interface RedisConnectionOptions {
  url: string
  role: RedisRole
  log?: Log | undefined
  commandTimeoutMs?: number | undefined
  /** Shown in CLIENT LIST, which helps an operator tell our connections apart. */
  name?: string | undefined
}

/**
 * One connection to a standalone Redis from a `redis://` or `rediss://` URL
 * (user, password and db included), with the options of its role. The
 * processes build theirs from the whole configuration with the factory
 * (src/redis/factory.ts), which also covers Sentinel, Cluster and TLS files.
 */
export function createRedis (opts: RedisConnectionOptions): Redis {
  const options = roleOptions(opts.role, { ...DEFAULT_TIMEOUTS, commandTimeoutMs: opts.commandTimeoutMs ?? DEFAULT_TIMEOUTS.commandTimeoutMs })
  const redis = new Redis(opts.url, { ...options, connectionName: opts.name ?? `checkout-expiry:${opts.role}` })
  return watch(redis, opts.role, opts.log)
}

/** Closes a connection we own: QUIT when it is up, disconnect when it is not. */
export async function closeRedis (redis: RedisClient): Promise<void> {
  if (redis.status === 'end') return
  if (redis.status !== 'ready') {
    redis.disconnect()
    return
  }
  try {
    await redis.quit()
  } catch {
    redis.disconnect()
    return
  }
  // QUIT closes the connection but not the sentinel connections ioredis keeps to
  // follow +switch-master; only disconnect() does, and without it they keep the
  // process alive and retry for ever.
  if (redis instanceof Redis && redis.options.sentinels) redis.disconnect()
}

/** Resolves true once the connection is ready, false after timeoutMs. */
export async function waitUntilReady (redis: RedisClient, timeoutMs: number): Promise<boolean> {
  if (redis.status === 'ready') return true
  return await new Promise<boolean>((resolve) => {
    const done = (ok: boolean) => {
      clearTimeout(timer)
      redis.off('ready', onReady)
      resolve(ok)
    }
    const onReady = () => done(true)
    const timer = setTimeout(() => done(false), timeoutMs)
    redis.on('ready', onReady)
  })
}
