import { Type } from '@sinclair/typebox'
import fp from 'fastify-plugin'
import { createApiMetrics, type ApiMetrics, type HoldEvent } from '../metrics/api-metrics.js'

declare module 'fastify' {
  interface FastifyInstance {
    metrics: ApiMetrics
  }
  interface FastifyRequest {
    /** Set by a route whose answer changed no hold (a retry of an ended hold): not counted as a hold change. */
    holdUnchanged: boolean
  }
}

export interface MetricsPluginOptions {
  /** The app's metrics; by default a registry of its own. */
  metrics?: ApiMetrics | undefined
}

/**
 * Which answers change a hold: method, route pattern and status. Read off
 * the response rather than counted in the handlers, so a refused create
 * (a 409 the error handler sends) counts like any other, and a response
 * marked `Idempotent-Replayed` (the first reply sent again) never counts twice.
 */
const HOLD_EVENTS: Record<string, HoldEvent> = {
  'POST /checkout 201': 'created',
  'POST /checkout 409': 'conflicted',
  'POST /checkout/:id/complete 200': 'completed',
  'DELETE /checkout/:id 200': 'cancelled',
  'PATCH /checkout/:id 200': 'extended'
}

/**
 * Prometheus metrics: counts and times every request by route pattern,
 * counts hold changes, and serves them at GET /metrics. Register it before
 * the routes.
 */
export default fp<MetricsPluginOptions>(async (app, opts) => {
  const metrics = opts.metrics ?? createApiMetrics()
  app.decorate('metrics', metrics)
  app.decorateRequest('holdUnchanged', false)

  // A callback hook, not an async one: no promise per request.
  app.addHook('onResponse', (request, reply, done) => {
    // The pattern, not request.url: raw URLs carry order ids, and unbounded label values are a defect.
    const route = request.routeOptions.url ?? 'unmatched'
    metrics.request(request.method, route, reply.statusCode, reply.elapsedTime / 1000)
    const event = request.method === 'GET' ? undefined : HOLD_EVENTS[`${request.method} ${route} ${reply.statusCode}`]
    if (event !== undefined && !request.holdUnchanged && reply.getHeader('idempotent-replayed') === undefined) metrics.hold(event)
    done()
  })

  app.get('/metrics', {
    config: { access: 'metrics' },
    schema: {
      summary: 'Prometheus metrics in the text exposition format',
      tags: ['health'],
      response: {
        200: {
          description: 'Prometheus text exposition format 0.0.4',
          content: { 'text/plain': { schema: Type.String({ example: 'checkout_holds_created_total 1520' }) } }
        }
      }
    }
  }, async (_request, reply) => {
    const text = await metrics.registry.metrics()
    return reply.type(metrics.registry.contentType).send(text)
  })
}, { name: 'metrics' })
