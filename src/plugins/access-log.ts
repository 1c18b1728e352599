import fp from 'fastify-plugin'

/**
 * One access line per request, when its response is sent: method, route,
 * status and time, with the request id. Replaces Fastify's two lines per
 * request ("incoming request" and "request completed"), which cost about as
 * much as the rest of a request's handling under load (see bench:api).
 */
export default fp(async (app) => {
  app.addHook('onResponse', async (request, reply) => {
    request.log.info({
      method: request.method,
      url: request.url,
      route: request.routeOptions.url,
      statusCode: reply.statusCode,
      responseTimeMs: Math.round(reply.elapsedTime * 10) / 10
    }, 'request answered')
  })
}, { name: 'access-log' })
