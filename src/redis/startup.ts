import { Cluster } from 'ioredis'
import { ConfigError } from '../config.js'
import type { RedisClient } from './connection.js'
import { describeFatalConnectionError } from './tls.js'

/**
 * Waits for a connection's first 'ready'. Resolves true when ready, false
 * after timeoutMs (Redis may simply be down: the caller carries on and the
 * connection keeps retrying); rejects with a ConfigError, the one line the
 * process stops with, on an error retrying cannot fix: an untrusted
 * certificate, a wrong password. Without timeoutMs it waits as long as it takes.
 */
export async function connectOrRefuse (redis: RedisClient, where: string = describeClient(redis), timeoutMs?: number): Promise<boolean> {
  if (redis.status === 'ready') return true
  return await new Promise<boolean>((resolve, reject) => {
    const done = (result: boolean | ConfigError) => {
      if (timer) clearTimeout(timer)
      redis.off('ready', onReady)
      redis.off('error', onError)
      redis.off('node error', onError)
      if (result instanceof ConfigError) reject(result)
      else resolve(result)
    }
    const onReady = () => done(true)
    const onError = (err: Error) => {
      // A cluster wraps the node's error ("Failed to refresh slots cache.") and keeps it as lastNodeError.
      const cause = (err as Error & { lastNodeError?: Error }).lastNodeError ?? err
      const fatal = describeFatalConnectionError(cause)
      if (fatal) done(new ConfigError(`cannot connect to Redis (${where}): ${fatal}`))
    }
    const timer = timeoutMs === undefined ? undefined : setTimeout(() => done(false), timeoutMs)
    redis.on('ready', onReady)
    redis.on('error', onError)
    redis.on('node error', onError)
  })
}

/** Where a connection goes, for the line the process stops with: no credentials. */
export function describeClient (redis: RedisClient): string {
  if (redis instanceof Cluster) return 'cluster'
  const o = redis.options
  if (o.sentinels) return `sentinel ${o.name ?? ''}`
  return `${o.tls ? 'rediss' : 'redis'}://${o.host ?? ''}:${o.port ?? ''}/${o.db ?? 0}`
}
