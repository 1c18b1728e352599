import { createHash, timingSafeEqual } from 'node:crypto'
import { readFileSync } from 'node:fs'
import type { FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { ConfigError, type Config } from '../config.js'
import { Errors } from '../errors.js'
import { isCheckoutRequest, pathOf, under } from './paths.js'

/**
 * Optional bearer-token auth. With tokens configured, every /checkout route
 * needs `Authorization: Bearer <token>`; /metrics and /docs only when the
 * config says so; health checks never (load balancers call them).
 */
export interface AuthSettings {
  tokens: string[]
  protectMetrics: boolean
  protectDocs: boolean
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
  const clean = tokens.map((t) => t.trim()).filter((t) => t !== '')
  const bad = clean.find((t) => !/^[\x21-\x7e]+$/.test(t))
  if (bad !== undefined) throw new ConfigError('Invalid API_TOKENS: a token may hold only visible ASCII characters, no spaces')
  return clean
}

/** Hashing first gives every comparison the same length, so timingSafeEqual applies and no length leaks. */
const digest = (token: string) => createHash('sha256').update(token).digest()

/** Checks the token against every configured one, without an early exit. */
export function tokenMatches (presented: string, known: Buffer[]): boolean {
  const hash = digest(presented)
  let match = false
  for (const k of known) match = timingSafeEqual(hash, k) || match
  return match
}


export default fp<AuthSettings>(async (app, { tokens, protectMetrics, protectDocs }) => {
  if (tokens.length === 0) {
    // Once the app is ready: an API that refuses to start says only why.
    app.addHook('onReady', async () => {
      app.log.warn('API_TOKENS is not set: the /checkout routes are open to anyone who can reach this port')
    })
    return
  }
  const known = tokens.map(digest)
  const guarded = (request: FastifyRequest) => {
    if (isCheckoutRequest(request)) return true
    const path = pathOf(request)
    return (protectMetrics && under(path, '/metrics')) || (protectDocs && under(path, '/docs'))
  }

  app.addHook('onRequest', async (request, reply) => {
    if (!guarded(request)) return
    const header = request.headers.authorization ?? ''
    const match = /^Bearer +(\S+) *$/i.exec(header)
    if (match?.[1] !== undefined && tokenMatches(match[1], known)) return
    const realm = 'Bearer realm="checkout-expiry"'
    if (header === '') {
      void reply.header('WWW-Authenticate', realm)
      throw new Errors.UNAUTHORIZED('Authorization: Bearer <token> is required')
    }
    void reply.header('WWW-Authenticate', `${realm}, error="invalid_token"`)
    throw new Errors.UNAUTHORIZED('the bearer token is not valid')
  })
}, { name: 'auth' })
