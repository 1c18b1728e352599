import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify'
import type { Logger } from 'pino'
import type { Config } from './config.js'
import type { RedisClient } from './redis/connection.js'
import accessLog from './plugins/access-log.js'
import auth, { readAdminTokens, readApiTokens } from './plugins/auth.js'
import idempotency from './plugins/idempotency.js'
import jsonBody from './plugins/json-body.js'
import metricsPlugin from './plugins/metrics.js'
import openapi from './plugins/openapi.js'
import errorHandler, { clientErrorHandler, frameworkErrors, MAX_PARAM_LENGTH } from './plugins/error-handler.js'
import rateLimit from './plugins/rate-limit.js'
import redisPlugin from './plugins/redis.js'
import requestIdPlugin, { requestId } from './plugins/request-id.js'
import storePlugin from './plugins/store.js'
import dashboard from './admin/plugin.js'
import checkoutRoutes from './routes/checkout.js'
import healthRoutes from './routes/health.js'

export interface AppOptions {
  config: Config
  logger?: Logger | undefined
  /** A Redis connection owned by the caller; by default the app opens its own. */
  redis?: RedisClient | undefined
}

/** Large enough for a 16 KiB payload and its envelope, small enough to refuse junk early. */
export const BODY_LIMIT_BYTES = 64 * 1024

/**
 * What a client gets to send a request: the headers within HEADERS_TIMEOUT_MS,
 * the whole request within REQUEST_TIMEOUT_MS, each answered with a 408.
 * Node checks them every CONNECTIONS_CHECK_MS (30 s by default, which let a
 * trickled request run for a minute). A silent socket is closed only after
 * the request timeout has had its chance to answer.
 */
export const HEADERS_TIMEOUT_MS = 10_000
export const REQUEST_TIMEOUT_MS = 15_000
const CONNECTIONS_CHECK_MS = 1000
const IDLE_SOCKET_TIMEOUT_MS = REQUEST_TIMEOUT_MS + 2 * CONNECTIONS_CHECK_MS

/** Builds the API. Never listens: src/server.ts does, tests use inject(). */
export async function buildApp ({ config, logger, redis }: AppOptions): Promise<FastifyInstance> {
  const policy = {
    tokens: readApiTokens(config),
    adminTokens: config.DASHBOARD ? readAdminTokens(config) : [],
    protectMetrics: config.METRICS_REQUIRE_AUTH, protectDocs: config.DOCS_REQUIRE_AUTH }
  const app = Fastify({
    ...(logger ? { loggerInstance: logger as FastifyBaseLogger } : { logger: false }),
    bodyLimit: BODY_LIMIT_BYTES,
    genReqId: requestId,
    // One line per request from the access-log plugin instead of Fastify's two.
    logController: new LogController({ disableRequestLogging: true }),
    // Unknown fields are an error, not something to drop silently; "5000" is not a number.
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false } },
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
    // Errors raised before a route runs get the common error body too.
    frameworkErrors: frameworkErrors(BODY_LIMIT_BYTES),
    clientErrorHandler,
    http: { headersTimeout: HEADERS_TIMEOUT_MS, connectionsCheckingInterval: CONNECTIONS_CHECK_MS },
    connectionTimeout: IDLE_SOCKET_TIMEOUT_MS,
    requestTimeout: REQUEST_TIMEOUT_MS,
    keepAliveTimeout: 72_000,
    // A request that arrives on an open connection while the server closes is served, not refused with 503.
    return503OnClosing: false
  }).withTypeProvider<TypeBoxTypeProvider>()

  // The API speaks JSON only; a text body is a client mistake worth a 415.
  app.removeContentTypeParser('text/plain')
  try {
    await app.register(errorHandler, { bodyLimit: BODY_LIMIT_BYTES })
    await app.register(jsonBody)
    await app.register(requestIdPlugin)
    await app.register(accessLog)
    await app.register(redisPlugin, { config, client: redis })
    // Auth and the rate limit before any route: they decide on each route's declared access (see plugins/route-access.ts).
    await app.register(auth, policy)
    await app.register(rateLimit, { max: config.RATE_LIMIT_MAX, windowMs: config.RATE_LIMIT_WINDOW_MS, keyPrefix: config.KEY_PREFIX, policy })
    // Before any other route, so the document sees every one of them.
    await app.register(openapi)
    await app.register(metricsPlugin)
    await app.register(storePlugin, { config })
    await app.register(idempotency)
    await app.register(healthRoutes)
    await app.register(checkoutRoutes)
    // DASHBOARD=true: the operator API under /admin and the page at /dashboard (docs/dashboard.md).
    if (config.DASHBOARD) await app.register(dashboard, { config })
  } catch (err) {
    // A plugin refused (e.g. the key layout does not match the data): close what the others opened.
    await app.close()
    throw err
  }
  return app
}
