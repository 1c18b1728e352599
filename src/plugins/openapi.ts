import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import fp from 'fastify-plugin'
import { errorResponse } from '../schemas.js'
import type { Access } from './route-access.js'

/**
 * What the auth and rate-limit plugins can answer on a route that may need a
 * token: every /checkout route, and /metrics (see auth.ts, rate-limit.ts).
 */
const accessResponses = {
  401: { ...errorResponse(401), description: 'API_TOKENS is set (for /metrics: and METRICS_REQUIRE_AUTH) and the request has no valid bearer token' },
  429: { ...errorResponse(429), description: 'RATE_LIMIT_MAX is set and the client (its valid token, else its address) used it up; see Retry-After' }
}
const guardable = new Set<Access | undefined>(['api', 'metrics', 'admin'])

/** What the body parser answers, before the route runs, on any method that may carry a body. */
const bodyResponses = {
  413: { ...errorResponse(413), description: 'the body is larger than the server accepts' },
  415: { ...errorResponse(415), description: 'a body that is not application/json' }
}
const bodyless = new Set(['GET', 'HEAD'])

/**
 * What Node's HTTP parser answers before any route is matched, whatever the
 * path (see clientErrorHandler in error-handler.ts): so on every route.
 */
const httpResponses = {
  400: { ...errorResponse(400, ['BAD_REQUEST']), description: 'the bytes received are not valid HTTP' },
  408: { ...errorResponse(408), description: 'the headers did not arrive within 10 s, or the whole request within 15 s' },
  431: { ...errorResponse(431), description: 'the request line and headers together are over 16 KiB (Node\'s limit), a very long URL included' }
}

/** What the router answers on a route with a path parameter, before the route runs. */
const paramResponses = {
  414: { ...errorResponse(414), description: 'a path parameter is longer than 8 KiB' }
}

/**
 * The API document, generated from the routes' TypeBox schemas: OpenAPI 3 at
 * GET /docs/json, a browsable UI at /docs. Registered before the routes so
 * it sees every one of them.
 */
export default fp(async (app) => {
  await app.register(swagger, {
    transform: ({ schema, url, route }) => {
      // The document's own pages and files are not in it.
      if (route.config?.access === 'docs') return { schema, url }
      // A route that declares nothing is guarded like an api route (see route-access.ts).
      const access = route.config?.access ?? 'api'
      const guarded = guardable.has(access)
      const withBody = [route.method].flat().some((m) => !bodyless.has(m))
      const withParams = url.includes(':')
      const response = {
        ...httpResponses,
        ...(withParams ? paramResponses : {}),
        ...(withBody ? bodyResponses : {}),
        // The route's own, e.g. a 400 with all its codes, BAD_REQUEST among them.
        // (A route may declare no schema at all.)
        ...((schema as { response?: Record<string, unknown> } | undefined)?.response),
        ...(guarded ? accessResponses : {})
      }
      return { schema: { ...schema, response, ...(guarded ? { security: [{ [access === 'admin' ? 'adminAuth' : 'bearerAuth']: [] }] } : {}) }, url }
    },
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'checkout-expiry',
        version: '0.1.0',
        description: 'Holds an order at checkout for a limited time; when the hold runs out, the expiry handler runs exactly once. ' +
          'Every error has the body { statusCode, code, error, message } with a stable code (see the README for the list).'
      },
      components: {
        // Every error body, for answers no operation owns (a path or method the API does not have: 404 ROUTE_NOT_FOUND, 405).
        schemas: { Error: errorResponse() },
        securitySchemes: {
          bearerAuth: { type: 'http', scheme: 'bearer', description: 'one of API_TOKENS; needed only when tokens are configured' },
          adminAuth: { type: 'http', scheme: 'bearer', description: 'one of ADMIN_TOKENS: the /admin routes (DASHBOARD=true) take these only' }
        }
      },
      tags: [
        { name: 'checkout', description: 'holds and their lifecycle' },
        { name: 'health', description: 'liveness and readiness' },
        { name: 'admin', description: 'the operator API behind the dashboard (DASHBOARD=true, ADMIN_TOKENS)' }
      ]
    }
  })
  await app.register(async (docs) => {
    // Every route the UI plugin declares (the document, the page, its files) is a docs route, whatever its path.
    docs.addHook('onRoute', (route) => { route.config = { ...route.config, access: 'docs' } })
    await docs.register(swaggerUi, { routePrefix: '/docs' })
  })
}, { name: 'openapi' })
