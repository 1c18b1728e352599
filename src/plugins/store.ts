import fp from 'fastify-plugin'
import type { Config } from '../config.js'
import { Errors } from '../errors.js'
import { createKeyspace, type KeyFormat } from '../keys.js'
import { closeRedis } from '../redis/connection.js'
import { redisDeployment } from '../redis/deployment.js'
import { createReplicaReader } from '../redis/factory.js'
import { createStoreContext, type StoreContext } from '../store/context.js'
import { openReadCache } from '../store/read-cache-setup.js'
import { LayoutMismatchError, openKeyspace } from '../store/layout.js'
import { watchLayout, type LayoutWatch } from '../store/layout-watch.js'

declare module 'fastify' {
  interface FastifyInstance {
    store: StoreContext
    limits: CheckoutLimits
  }
}

export interface CheckoutLimits {
  defaultTtlMs: number
  maxTtlMs: number
  minTtlMs: number
  maxPayloadBytes: number
}

export const MIN_TTL_MS = 1000
/** How often an API that could not open the key layout tries again: quickly at first, then every few seconds. */
const LAYOUT_RETRY_MIN_MS = 250
const LAYOUT_RETRY_MAX_MS = 5000
export const MAX_PAYLOAD_BYTES = 16 * 1024

/**
 * The checkout store and the limits requests are checked against. The key
 * layout (and with it the key format) is read from Redis, or recorded, before
 * the API serves: a mismatch makes buildApp reject. When Redis is away at
 * start, store calls answer 503 until it answers and the layout is read; a
 * mismatch then refuses every store call.
 */

export default fp<{ config: Config }>(async (app, { config }) => {
  // Replaced by the recorded layout's keyspace once Redis answers; until then every call is refused with 503.
  const placeholder = createKeyspace(config.KEY_PREFIX, config.KEY_SHARDS, config.KEY_FORMAT as KeyFormat)
  // READ_CACHE (docs/read-cache.md); refused on a cluster and with replica reads before any connection is opened.
  const readCache = config.READ_CACHE
    ? openReadCache(redisDeployment(config), {
      maxEntries: config.READ_CACHE_MAX_ENTRIES, maxBytes: config.READ_CACHE_MAX_BYTES, maxAgeMs: config.READ_CACHE_MAX_AGE_MS
    }, app.log, app.hasDecorator('metrics') ? app.metrics.readCache : undefined)
    : undefined
  if (readCache) app.addHook('onClose', readCache.close)
  // Tracking set up for the layout expected, and again below if the recorded one differs.
  readCache?.settings.follow(placeholder)
  // GET /checkout/:id reads from a replica with REDIS_READ_FROM=replica, on a connection of its own.
  const reader = config.REDIS_READ_FROM === 'replica'
    ? createReplicaReader(redisDeployment(config), { log: app.log, name: 'checkout-expiry:api-reader' })
    : undefined
  if (reader) app.addHook('onClose', async () => await closeRedis(reader))
  const store = createStoreContext(app.redis, placeholder, config.CHECKOUT_RESULT_RETENTION_MS, {
    events: config.EVENT_STREAM ? { maxLen: config.EVENT_STREAM_MAXLEN } : undefined,
    reader,
    readCache: readCache?.settings,
    waitReplicas: { replicas: config.REDIS_WAIT_REPLICAS, timeoutMs: config.REDIS_WAIT_TIMEOUT_MS }
  })
  app.decorate('store', store)
  app.decorate('limits', {
    defaultTtlMs: config.CHECKOUT_DEFAULT_TTL_MS,
    maxTtlMs: config.CHECKOUT_MAX_TTL_MS,
    minTtlMs: MIN_TTL_MS,
    maxPayloadBytes: MAX_PAYLOAD_BYTES
  })
  // Follows a change of the record (`checkoutctl migrate`) while serving: store calls read store.keys each time.
  let watch: LayoutWatch | undefined
  app.addHook('onClose', async () => watch?.stop())
  const open = async () => {
    store.keys = await openKeyspace(app.redis, config.KEY_PREFIX, config.KEY_SHARDS, app.log, config.KEY_FORMAT as KeyFormat)
    readCache?.settings.follow(store.keys)
    watch ??= watchLayout({
      redis: app.redis,
      keys: () => store.keys,
      log: app.log,
      onChange: (keys) => {
        store.keys = keys
        readCache?.settings.follow(keys)
      }
    })
  }
  const refuseForGood = (err: LayoutMismatchError) => {
    store.refusal = err
    app.log.fatal({ err }, 'the key layout does not match the data in Redis: refusing every request')
  }
  if (app.redis.status === 'ready') {
    try {
      await open()
      return
    } catch (err) {
      // A mismatch stops the API at start; anything else (Redis full on a new prefix, a failover) passes.
      if (err instanceof LayoutMismatchError) throw err
      app.log.warn({ err }, 'could not open the key layout yet; answering 503 and trying again')
    }
  }
  store.refusal = new Errors.REDIS_UNAVAILABLE()
  // Tried again on a timer, not only on a reconnection: a failed read on a live connection
  // (memory full, a replica being promoted) would otherwise refuse every request for ever.
  let timer: NodeJS.Timeout | undefined
  let delayMs = LAYOUT_RETRY_MIN_MS
  let closed = false
  const attempt = () => {
    clearTimeout(timer)
    timer = undefined
    if (closed || app.redis.status !== 'ready') return
    open().then(() => {
      delete store.refusal
      app.redis.off('ready', attempt)
    }, (err: unknown) => {
      if (err instanceof LayoutMismatchError) {
        app.redis.off('ready', attempt)
        refuseForGood(err)
        return
      }
      app.log.debug({ err, retryInMs: delayMs }, 'could not open the key layout yet')
      timer = setTimeout(attempt, delayMs)
      delayMs = Math.min(delayMs * 2, LAYOUT_RETRY_MAX_MS)
    })
  }
  app.redis.on('ready', attempt)
  app.addHook('onClose', async () => {
    closed = true
    clearTimeout(timer)
    app.redis.off('ready', attempt)
  })
  attempt()
}, { name: 'store', dependencies: ['redis'] })
