import type { Redis } from 'ioredis'
import { ConfigError } from '../config.js'
import type { Keyspace } from '../keys.js'
import { closeRedis, type Log } from '../redis/connection.js'
import type { RedisDeployment } from '../redis/deployment.js'
import { createRedisClient } from '../redis/factory.js'
import type { ReadCacheSettings } from './context.js'
import { createReadCache, type ReadCacheMetrics, type ReadCacheOptions } from './read-cache.js'
import { packedTrackingPrefixes } from './read-cache-packed.js'
import { keepTracking, type TrackingMode } from './read-cache-tracking.js'

export interface OpenReadCache {
  settings: ReadCacheSettings
  close: () => Promise<void>
}

/**
 * READ_CACHE=true: two more connections to the primary, one for the cached
 * reads (tracked) and one for their invalidations. Refused on a Redis
 * Cluster (tracking is per node: a reader and an invalidation connection
 * would be needed on every master, and kept through resharding) and with
 * REDIS_READ_FROM=replica (a replica sends invalidations only as it
 * applies the replication stream, so a read after a write acknowledged by
 * the primary could be served stale for as long as the replica lags). A
 * ConfigError: the API process stops with its message in one line.
 */
export function openReadCache (
  dep: RedisDeployment, limits: Omit<ReadCacheOptions, 'metrics'>, log: Log, metrics?: ReadCacheMetrics
): OpenReadCache {
  if (dep.mode === 'cluster') throw new ConfigError('READ_CACHE=true is not supported on a Redis Cluster yet; turn it off (docs/read-cache.md)')
  if (dep.readFrom === 'replica') {
    throw new ConfigError('READ_CACHE=true and REDIS_READ_FROM=replica cannot be combined; choose one (docs/read-cache.md)')
  }
  const reader = createRedisClient(dep, 'api', { log, name: 'checkout-expiry:api-cached-reader' }) as Redis
  const invalidations = createRedisClient(dep, 'subscriber', { log, name: 'checkout-expiry:api-invalidations' }) as Redis
  const cache = createReadCache({ ...limits, metrics })
  let mode: TrackingMode = { args: [], key: '' }
  let modeOfKeys: Keyspace | undefined
  const tracking = keepTracking({ reader, invalidations }, cache, log, () => mode)
  // Formats 1 and 2: Redis tracks the order hash each read touches. Format 3: a read
  // touches a bucket its script names itself, which Redis does not track; the cache
  // hears of every write to the shards' buckets, long-id records and order hashes (BCAST).
  const follow = (keys: Keyspace): boolean => {
    if (keys !== modeOfKeys) {
      modeOfKeys = keys
      const prefixes = keys.format === 3 ? packedTrackingPrefixes(keys) : []
      const key = prefixes.join(' ')
      if (key !== mode.key) {
        mode = { args: prefixes.length > 0 ? ['BCAST', ...prefixes.flatMap((p) => ['PREFIX', p])] : [], key }
        tracking.retrack()
      }
    }
    return tracking.onFor === mode.key
  }
  return {
    settings: { cache, reader, settled: async () => { await invalidations.ping() }, follow },
    close: async () => {
      tracking.stop()
      await Promise.all([closeRedis(reader), closeRedis(invalidations)])
    }
  }
}
