import type { FastifyRequest } from 'fastify'

/**
 * What a route is, said where the route is declared (`config: { access }`).
 * Auth and the rate limit read it off the route Fastify matched, never off
 * the URL: `/%63heckout/a1` and `http://x/checkout/a1` match the same route
 * as `/checkout/a1`, so they get the same treatment. A request that matches
 * no route (a 404) has no access class and reaches no handler.
 *
 * - `api`: the /checkout routes, and any route that declares nothing, so a
 *   route added without a thought is guarded rather than open.
 * - `metrics`: GET /metrics.
 * - `docs`: the API document and its UI under /docs.
 * - `public`: the health checks (load balancers call them without a token),
 *   and the dashboard page and its files (they hold no data; the page asks
 *   for an admin token and sends it to /admin).
 * - `admin`: the operator API under /admin; only ADMIN_TOKENS open it.
 */
export type Access = 'api' | 'metrics' | 'docs' | 'public' | 'admin'

declare module 'fastify' {
  interface FastifyContextConfig {
    access?: Access
  }
}

/** Which routes need a bearer token. */
export interface AccessPolicy {
  tokens: string[]
  /** ADMIN_TOKENS: the only tokens an admin route accepts (admin routes exist only when some are set). */
  adminTokens?: string[] | undefined
  protectMetrics: boolean
  protectDocs: boolean
}

/** The matched route's access; none for a request no route matched (it gets a 404 and reaches no handler). */
export const accessOf = (request: FastifyRequest): Access | undefined =>
  request.is404 ? undefined : request.routeOptions.config.access ?? 'api'

/** With tokens configured: every api route, and metrics and docs when the config says so; admin routes always. */
export function needsToken (access: Access | undefined, policy: AccessPolicy): boolean {
  if (access === 'admin') return true
  if (policy.tokens.length === 0) return false
  return access === 'api' || (access === 'metrics' && policy.protectMetrics) || (access === 'docs' && policy.protectDocs)
}
