import fp from 'fastify-plugin'
import type { Config } from '../config.js'
import { createKeyspace } from '../keys.js'
import { closeRedis } from '../redis/connection.js'
import { redisDeployment } from '../redis/deployment.js'
import { createReplicaReader } from '../redis/factory.js'
import { createStoreContext, type StoreContext } from '../store/context.js'
import { checkLayout, LayoutMismatchError } from '../store/layout.js'

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
export const MAX_PAYLOAD_BYTES = 16 * 1024

/**
 * The checkout store and the limits requests are checked against. The key
 * layout is checked against the one recorded in Redis before the API serves:
 * a mismatch makes buildApp reject. When Redis is away at start, the check
 * runs once it answers, and a mismatch then refuses every store call.
 */
export default fp<{ config: Config }>(async (app, { config }) => {
  const keys = createKeyspace(config.KEY_PREFIX, config.KEY_SHARDS)
  // GET /checkout/:id reads from a replica with REDIS_READ_FROM=replica, on a connection of its own.
  const reader = config.REDIS_READ_FROM === 'replica'
    ? createReplicaReader(redisDeployment(config), { log: app.log, name: 'checkout-expiry:api-reader' })
    : undefined
  if (reader) app.addHook('onClose', async () => await closeRedis(reader))
  const store = createStoreContext(app.redis, keys, config.CHECKOUT_RESULT_RETENTION_MS, {
    events: config.EVENT_STREAM ? { maxLen: config.EVENT_STREAM_MAXLEN } : undefined,
    reader,
    waitReplicas: { replicas: config.REDIS_WAIT_REPLICAS, timeoutMs: config.REDIS_WAIT_TIMEOUT_MS }
  })
  app.decorate('store', store)
  app.decorate('limits', {
    defaultTtlMs: config.CHECKOUT_DEFAULT_TTL_MS,
    maxTtlMs: config.CHECKOUT_MAX_TTL_MS,
    minTtlMs: MIN_TTL_MS,
    maxPayloadBytes: MAX_PAYLOAD_BYTES
  })
  if (app.redis.status === 'ready') {
    await checkLayout(app.redis, keys, app.log)
    return
  }
  const onReady = () => {
    checkLayout(app.redis, keys, app.log).then(() => app.redis.off('ready', onReady), (err: unknown) => {
      if (!(err instanceof LayoutMismatchError)) return // checked again on the next reconnect
      app.redis.off('ready', onReady)
      store.refusal = err
      app.log.fatal({ err }, 'the key layout does not match the data in Redis: refusing every request')
    })
  }
  app.redis.on('ready', onReady)
}, { name: 'store', dependencies: ['redis'] })
