import { createHash } from 'node:crypto'
import rateLimit from '@fastify/rate-limit'
import type { FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { Errors } from '../errors.js'
import { isCheckoutRequest } from './paths.js'

/**
 * Optional rate limit per client on the /checkout routes. Counters live in
 * Redis (one key per client and window, under KEY_PREFIX) so every API
 * replica counts against the same budget. A client is its bearer token when
 * it sends one, else its address.
 */
export interface RateLimitSettings {
  max: number
  windowMs: number
  keyPrefix: string
}

function clientKey (request: FastifyRequest): string {
  const match = /^Bearer +(\S+)/i.exec(request.headers.authorization ?? '')
  // Never the token itself in a Redis key name.
  if (match?.[1] !== undefined) return `t:${createHash('sha256').update(match[1]).digest('hex').slice(0, 32)}`
  return `ip:${request.ip}`
}

export default fp<RateLimitSettings>(async (app, { max, windowMs, keyPrefix }) => {
  if (max === 0) return
  await app.register(rateLimit, {
    global: true,
    max,
    timeWindow: windowMs,
    redis: app.redis,
    nameSpace: `${keyPrefix}rl:`,
    keyGenerator: clientKey,
    // Health checks, metrics and the API document are not rate limited.
    allowList: (request) => !isCheckoutRequest(request),
    // With Redis away the routes answer 503 anyway; the limit must not turn that into 500s.
    skipOnError: true,
    errorResponseBuilder: (_request, context) => new Errors.RATE_LIMITED(Math.ceil(context.ttl / 1000))
  })
}, { name: 'rate-limit', dependencies: ['redis'] })
