import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import fp from 'fastify-plugin'

/**
 * The API document, generated from the routes' TypeBox schemas: OpenAPI 3 at
 * GET /docs/json, a browsable UI at /docs. Registered before the routes so
 * it sees every one of them.
 */
export default fp(async (app) => {
  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'checkout-expiry',
        version: '0.1.0',
        description: 'Holds an order at checkout for a limited time; when the hold runs out, the expiry handler runs exactly once. ' +
          'Every error has the body { statusCode, code, error, message } with a stable code (see the README for the list).'
      },
      tags: [
        { name: 'checkout', description: 'holds and their lifecycle' },
        { name: 'health', description: 'liveness and readiness' }
      ]
    }
  })
  await app.register(swaggerUi, { routePrefix: '/docs' })
}, { name: 'openapi' })
