import { Redis, type Cluster, type RedisOptions } from 'ioredis'
import type { Logger } from 'pino'

/**
 * A connection the store can run on: one node (standalone, or the primary
 * behind Sentinel) or a Redis Cluster. Store functions only use commands
 * both offer; every script and command touches keys of one slot.
 */
export type RedisClient = Redis | Cluster

/** Any pino-compatible logger (fastify's request logger included). */
export type Log = Pick<Logger, 'info' | 'warn' | 'error' | 'debug'>

/**
 * The one place that builds Redis connections. Each role gets the options
 * its job needs:
 * - `api`: fails fast (no offline queue, a command timeout), so a request
 *   answers 503 quickly while Redis is away; reconnects in the background.
 * - `worker`: waits for Redis to come back instead of failing, so an
 *   acknowledgement is never dropped because of a short outage.
 * - `subscriber`: a dedicated pub/sub connection; ioredis resubscribes it
 *   after every reconnect.
 * `redis://` and `rediss://` URLs with user, password and db are accepted.
 */
export type RedisRole = 'api' | 'worker' | 'subscriber'

export interface RedisConnectionOptions {
  url: string
  role: RedisRole
  log?: Log | undefined
  commandTimeoutMs?: number | undefined
  /** Shown in CLIENT LIST, which helps an operator tell our connections apart. */
  name?: string | undefined
}

const reconnectDelay = (times: number) => Math.min(50 * 2 ** Math.min(times, 6), 2000)

export function createRedis (opts: RedisConnectionOptions): Redis {
  const common: RedisOptions = {
    connectionName: opts.name ?? `checkout-expiry:${opts.role}`,
    retryStrategy: reconnectDelay,
    connectTimeout: 5000,
    // RESP2 keeps script and pub/sub replies in the same shapes on every Redis
    // version and managed service we run on.
    protocol: 2
  }
  const byRole: Record<RedisRole, RedisOptions> = {
    api: {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: opts.commandTimeoutMs ?? 2000,
      enableAutoPipelining: true
    },
    worker: { maxRetriesPerRequest: null, enableAutoPipelining: true },
    subscriber: { maxRetriesPerRequest: null, autoResubscribe: true }
  }
  const redis = new Redis(opts.url, { ...common, ...byRole[opts.role] })
  const log = opts.log
  if (log) {
    // Without an 'error' listener ioredis prints every reconnect failure to stderr.
    let down = false
    redis.on('error', (err: Error) => {
      if (!down) log.warn({ err: { message: err.message }, role: opts.role }, 'redis connection error')
      down = true
    })
    redis.on('ready', () => {
      if (down) log.info({ role: opts.role }, 'redis connection restored')
      down = false
    })
  } else {
    redis.on('error', () => {})
  }
  return redis
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
  }
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
