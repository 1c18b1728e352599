import type { FastifyRequest } from 'fastify'

/**
 * What a route is, said where the route is declared (`config: { access }`).
 * Auth and the rate limit read it off the route Fastify matched, never off
 * the URL: `/%63heckout/a1` and `http://x/checkout/a1` match the same route
 * as `/checkout/a1`, so they get the same treatment. A request that matches
 * no route (a 404) has no access class and reaches no handler.
 *
 * - `api`: the /checkout routes.
 * - `metrics`: GET /metrics.
 * - `docs`: the API document and its UI under /docs.
 */
export type Access = 'api' | 'metrics' | 'docs'

declare module 'fastify' {
  interface FastifyContextConfig {
    access?: Access
  }
}

/** Which routes need a bearer token. */
export interface AccessPolicy {
  tokens: string[]
  protectMetrics: boolean
  protectDocs: boolean
}

export const accessOf = (request: FastifyRequest): Access | undefined => request.routeOptions.config.access

/** With tokens configured: every api route, and metrics and docs when the config says so. */
export function needsToken (access: Access | undefined, policy: AccessPolicy): boolean {
  if (policy.tokens.length === 0) return false
  return access === 'api' || (access === 'metrics' && policy.protectMetrics) || (access === 'docs' && policy.protectDocs)
}
