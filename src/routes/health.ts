import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { errorResponse, HealthResponse } from '../schemas.js'
import { pingStore } from '../store/checkout-store.js'

const healthRoutes: FastifyPluginAsyncTypebox = async (app) => {
  // Open whatever the auth settings: load balancers call these without a token.
  app.get('/healthz', {
    config: { access: 'public' },
    schema: { summary: 'The process is alive', tags: ['health'], response: { 200: HealthResponse } }
  }, async () => ({ status: 'ok' }))

  app.get('/readyz', {
    config: { access: 'public' },
    schema: { summary: 'Redis answers', tags: ['health'], response: { 200: HealthResponse, 503: errorResponse(503), 500: errorResponse(500) } }
  }, async () => {
    await pingStore(app.store)
    return { status: 'ready' }
  })
}

export default healthRoutes
