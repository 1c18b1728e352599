import { createHash, timingSafeEqual } from 'node:crypto'
import { readFileSync } from 'node:fs'
import type { FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { ConfigError, type Config } from '../config.js'
import { Errors } from '../errors.js'
import { accessOf, needsToken, type AccessPolicy } from './route-access.js'

/** ADMIN_TOKENS: the bearer tokens of the /admin routes, checked like API tokens. */
export function readAdminTokens (config: Pick<Config, 'ADMIN_TOKENS'>): string[] {
  return cleanTokens(config.ADMIN_TOKENS.split(','), 'ADMIN_TOKENS')
}

/** API_TOKENS plus the lines of API_TOKENS_FILE (blank lines and `#` comments skipped). */
export function readApiTokens (config: Pick<Config, 'API_TOKENS' | 'API_TOKENS_FILE'>): string[] {
  const tokens = config.API_TOKENS.split(',')
  if (config.API_TOKENS_FILE !== '') {
    let text: string
    try {
      text = readFileSync(config.API_TOKENS_FILE, 'utf8')
    } catch (err) {
      throw new ConfigError(`Invalid API_TOKENS_FILE=${JSON.stringify(config.API_TOKENS_FILE)}: cannot read it (${(err as NodeJS.ErrnoException).code ?? String(err)})`)
    }
    tokens.push(...text.split('\n').filter((line) => !line.trimStart().startsWith('#')))
  }
  return cleanTokens(tokens, 'API_TOKENS')
}

function cleanTokens (tokens: string[], name: string): string[] {
  const clean = tokens.map((t) => t.trim()).filter((t) => t !== '')
  const bad = clean.find((t) => !/^[\x21-\x7e]+$/.test(t))
  if (bad !== undefined) throw new ConfigError(`Invalid ${name}: a token may hold only visible ASCII characters, no spaces`)
  return clean
}

/** Hashing first gives every comparison the same length, so timingSafeEqual applies and no length leaks. */
export const digest = (token: string): Buffer => createHash('sha256').update(token).digest()

/** The token of an `Authorization: Bearer <token>` header (the scheme in any case), if the request sent one. */
export function bearerToken (request: FastifyRequest): string | undefined {
  return /^Bearer +(\S+) *$/i.exec(request.headers.authorization ?? '')?.[1]
}

/** Checks the token against every configured one, without an early exit. */
export function tokenMatches (presented: string, known: Buffer[]): boolean {
  const hash = digest(presented)
  let match = false
  for (const k of known) match = timingSafeEqual(hash, k) || match
  return match
}

/**
 * Optional bearer-token auth. With tokens configured, every /checkout route
 * needs `Authorization: Bearer <token>`; /metrics and /docs only when the
 * config says so; health checks never (load balancers call them). Which
 * route is which is declared on the route (see route-access.ts).
 */
export default fp<AccessPolicy>(async (app, policy) => {
  if (policy.tokens.length === 0) {
    // Once the app is ready: an API that refuses to start says only why.
    app.addHook('onReady', async () => {
      app.log.warn('API_TOKENS is not set: the /checkout routes are open to anyone who can reach this port')
    })
  }
  const known = policy.tokens.map(digest)
  // Admin routes take admin tokens only: a checkout client's token cannot replay or purge dead letters.
  const admins = (policy.adminTokens ?? []).map(digest)

  // preParsing, not onRequest: the rate limit (an onRequest hook of each
  // route) runs first, so a refused attempt counts against the client's
  // budget and guessing tokens ends in 429. Still before the body is read.
  // A callback hook, not an async one: no promise per request.
  app.addHook('preParsing', (request, reply, payload, done) => {
    const access = accessOf(request)
    if (!needsToken(access, policy)) return done(null, payload)
    const token = bearerToken(request)
    if (token !== undefined && tokenMatches(token, access === 'admin' ? admins : known)) return done(null, payload)
    const header = request.headers.authorization ?? ''
    const realm = 'Bearer realm="checkout-expiry"'
    if (header === '') {
      void reply.header('WWW-Authenticate', realm)
      return done(new Errors.UNAUTHORIZED('Authorization: Bearer <token> is required'))
    }
    void reply.header('WWW-Authenticate', `${realm}, error="invalid_token"`)
    done(new Errors.UNAUTHORIZED('the bearer token is not valid'))
  })
}, { name: 'auth' })
