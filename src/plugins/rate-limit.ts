import { createHash } from 'node:crypto'
import rateLimit from '@fastify/rate-limit'
import type { FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { Errors } from '../errors.js'
import { bearerToken, digest, tokenMatches } from './auth.js'
import { accessOf, needsToken, type AccessPolicy } from './route-access.js'

/**
 * Optional rate limit per client on the /checkout routes, and on /metrics
 * and /docs when they need a token. Counters live in Redis (one key per
 * client and window, under KEY_PREFIX) so every API replica counts against
 * the same budget. Register it before any route: it hooks the routes
 * declared after it.
 */
export interface RateLimitSettings {
  max: number
  windowMs: number
  keyPrefix: string
  policy: AccessPolicy
}

/**
 * A client is its token only when the token is valid: an invented bearer
 * string gets no budget of its own (nor a Redis key), it counts against the
 * address like a request without one. Without tokens configured, the address.
 */
function clientKey (known: Buffer[]) {
  return (request: FastifyRequest): string => {
    const token = bearerToken(request)
    // Never the token itself in a Redis key name.
    if (token !== undefined && tokenMatches(token, known)) return `t:${createHash('sha256').update(token).digest('hex').slice(0, 32)}`
    return `ip:${request.ip}`
  }
}

export default fp<RateLimitSettings>(async (app, { max, windowMs, keyPrefix, policy }) => {
  if (max === 0) return
  const counted = (request: FastifyRequest) => {
    const access = accessOf(request)
    return access === 'api' || needsToken(access, policy)
  }
  await app.register(rateLimit, {
    global: true,
    max,
    timeWindow: windowMs,
    redis: app.redis,
    nameSpace: `${keyPrefix}rl:`,
    keyGenerator: clientKey(policy.tokens.map(digest)),
    // Runs before auth (a preParsing hook), so refused requests are counted too.
    hook: 'onRequest',
    // Health checks are never limited; metrics and docs only when they need a token (else nobody guesses one there).
    allowList: (request) => !counted(request),
    // With Redis away the routes answer 503 anyway; the limit must not turn that into 500s.
    skipOnError: true,
    errorResponseBuilder: (_request, context) => new Errors.RATE_LIMITED(Math.ceil(context.ttl / 1000))
  })
}, { name: 'rate-limit', dependencies: ['redis'] })
