import { randomUUID } from 'node:crypto'
import type { IncomingMessage } from 'node:http'
import fp from 'fastify-plugin'

/**
 * Every request has an id on every log line of it: the caller's
 * `X-Request-Id` when it sends a sane one (so one id follows a checkout
 * through several services), else a new UUID. It is echoed in the response.
 */
const SAFE_ID = /^[A-Za-z0-9._:/+=-]{1,128}$/

export function requestId (req: IncomingMessage): string {
  const incoming = req.headers['x-request-id']
  // Anything else (control characters, megabytes) would end up in every log line.
  return typeof incoming === 'string' && SAFE_ID.test(incoming) ? incoming : randomUUID()
}

export default fp(async (app) => {
  app.addHook('onRequest', (request, reply, done) => {
    void reply.header('X-Request-Id', request.id)
    done()
  })
}, { name: 'request-id' })
