import { createHash } from 'node:crypto'
import type { FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import type { Idempotency, Replayable } from '../store/checkout-store.js'

declare module 'fastify' {
  interface FastifyRequest {
    /** The request's Idempotency-Key and fingerprint, when it sent one. */
    idempotency: Idempotency | undefined
  }
}

/** JSON with object keys sorted, so the same body always gives the same fingerprint. */
export function canonicalJson (value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`
  }
  return JSON.stringify(value) ?? 'null'
}

/** What makes two requests "the same": method, route, path parameters and body. */
function fingerprint (request: FastifyRequest): string {
  const text = `${request.method} ${request.routeOptions.url ?? ''} ${canonicalJson(request.params)} ${canonicalJson(request.body)}`
  return createHash('sha256').update(text).digest('hex')
}

/** Says on the response that it is the first reply to this request, sent again. */
export function markReplayed (reply: FastifyReply, result: Replayable): void {
  if (result.replayed) void reply.header('Idempotent-Replayed', 'true')
}

function readKey (request: FastifyRequest, _reply: FastifyReply, done: () => void): void {
  const key = request.headers['idempotency-key']
  if (typeof key === 'string') request.idempotency = { key, fingerprint: fingerprint(request) }
  done()
}

/** Routes that take the header declare it in their schema (IdempotencyHeaders). */
const takesKey = (schema: unknown) =>
  (schema as { headers?: { properties?: Record<string, unknown> } } | undefined)?.headers?.properties?.['idempotency-key'] !== undefined

/**
 * Idempotency-Key on the write routes: the header (validated by each
 * route's schema) and the request's fingerprint go to the store, which keeps
 * both with the write in one script. Hooked only on the routes that declare
 * the header, declared after this plugin: a read costs nothing here.
 */
export default fp(async (app) => {
  app.decorateRequest('idempotency', undefined)
  app.addHook('onRoute', (route) => {
    if (!takesKey(route.schema)) return
    route.preHandler = [readKey, ...[route.preHandler ?? []].flat()]
  })
}, { name: 'idempotency' })
