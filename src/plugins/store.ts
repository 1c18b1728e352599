import fp from 'fastify-plugin'
import type { Config } from '../config.js'
import { createKeyspace } from '../keys.js'
import { createStoreContext, type StoreContext } from '../store/context.js'

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

/** The checkout store and the limits requests are checked against. */
export default fp<{ config: Config }>(async (app, { config }) => {
  app.decorate('store', createStoreContext(
    app.redis,
    createKeyspace(config.KEY_PREFIX, config.KEY_SHARDS),
    config.CHECKOUT_RESULT_RETENTION_MS
  ))
  app.decorate('limits', {
    defaultTtlMs: config.CHECKOUT_DEFAULT_TTL_MS,
    maxTtlMs: config.CHECKOUT_MAX_TTL_MS,
    minTtlMs: MIN_TTL_MS,
    maxPayloadBytes: MAX_PAYLOAD_BYTES
  })
}, { name: 'store', dependencies: ['redis'] })
