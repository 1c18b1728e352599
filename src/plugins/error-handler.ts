import { STATUS_CODES } from 'node:http'
import type { Socket } from 'node:net'
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { Errors, type ErrorDetails } from '../errors.js'
import { pathForLog } from './access-log.js'
import { RouteMethods } from './route-methods.js'

type AnyError = FastifyError & { details?: ErrorDetails }

/** Seconds a client should wait before retrying a 503: Redis outages the API rides out are mostly shorter. */
export const RETRY_AFTER_S = 1

/**
 * The longest path parameter the router takes (longer: 414 URL_TOO_LONG);
 * shorter ids reach the schema and get a 400 naming its limit. Well under
 * Node's 16 KiB for the request line and headers together, which answers
 * 431 first: at 16 KiB this limit could never be reached.
 */
export const MAX_PARAM_LENGTH = 8 * 1024

/** Fastify's own errors, translated into our list so callers see one set of codes. */
function translate (err: AnyError, request: FastifyRequest, bodyLimit: number): AnyError {
  if (err.code && err.code in Errors) return err
  if (err.validation) {
    if (err.validationContext === 'body' && request.body === undefined) {
      return new Errors.VALIDATION_FAILED('body must be a JSON object, got an empty body')
    }
    const messages = err.validation.map((v) => {
      const where = `${err.validationContext ?? 'request'}${v.instancePath.replace(/\//g, '.')}`
      if (v.keyword === 'additionalProperties') {
        return `${where} has unknown field "${String(v.params.additionalProperty)}"`
      }
      return `${where} ${v.message ?? 'is invalid'}`
    })
    return new Errors.VALIDATION_FAILED(messages.join('; '))
  }
  switch (err.code) {
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return new Errors.INVALID_JSON(err.message)
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new Errors.BODY_TOO_LARGE(bodyLimit)
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new Errors.UNSUPPORTED_MEDIA_TYPE(request.headers['content-type'] ?? '(none)')
    case 'FST_ERR_BAD_URL':
      // Logged as 'request rejected': never the query string, which can hold a credential.
      return new Errors.INVALID_URL(pathForLog(request.url))
    case 'FST_ERR_MAX_PARAM_LENGTH':
      return new Errors.URL_TOO_LONG(MAX_PARAM_LENGTH)
  }
  // The body parser marks its SyntaxErrors with 400; any other SyntaxError is ours.
  if (err instanceof SyntaxError && err.statusCode === 400) return new Errors.INVALID_JSON(err.message)
  // The docs' file server refuses a path that leaves its folder (403) or holds a NUL (400): no file we serve.
  if (request.routeOptions.config?.access === 'docs' && isClientError(err)) {
    return new Errors.ROUTE_NOT_FOUND(request.method, pathForLog(request.url))
  }
  return err
}

const isClientError = (err: AnyError) => err.statusCode !== undefined && err.statusCode >= 400 && err.statusCode < 500

/** The common error body: `{ statusCode, code, error, message }` plus the error's details. */
function errorBody (err: AnyError, statusCode: number) {
  return { statusCode, code: err.code ?? 'BAD_REQUEST', error: STATUS_CODES[statusCode] ?? 'Error', message: err.message, ...err.details }
}

/** 4xx say what is wrong, 5xx never show internals. */
function sendError (raw: AnyError, request: FastifyRequest, reply: FastifyReply, bodyLimit: number) {
  const err = translate(raw, request, bodyLimit)
  if ((raw as { replayed?: boolean }).replayed) void reply.header('Idempotent-Replayed', 'true')
  const statusCode = err.statusCode !== undefined && err.statusCode >= 400 && err.statusCode < 600 ? err.statusCode : 500
  if (statusCode >= 500) {
    const known = err.code === 'REDIS_UNAVAILABLE'
    request.log[known ? 'warn' : 'error']({ err: raw }, known ? 'redis unavailable' : 'request failed')
    const safe = known ? err : new Errors.INTERNAL()
    // Every 503 says when to come back; a client that retries at once only adds to the load.
    if (safe.statusCode === 503) void reply.header('Retry-After', String(RETRY_AFTER_S))
    return reply.code(safe.statusCode ?? 500).send(errorBody(safe, safe.statusCode ?? 500))
  }
  request.log.info({ code: err.code, message: err.message }, 'request rejected')
  return reply.code(statusCode).send(errorBody(err, statusCode))
}

/**
 * Errors the router raises before any route or hook runs (a bad
 * percent-encoding, an over-long parameter): Fastify's `frameworkErrors`.
 */
export function frameworkErrors (bodyLimit: number) {
  return (err: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
    // No hook runs for these, so the request-id plugin has not set the header.
    void reply.header('X-Request-Id', request.id)
    return sendError(err, request, reply, bodyLimit)
  }
}

/**
 * Errors Node's HTTP parser raises before Fastify sees a request (headers
 * too large, a timeout, bytes that are not HTTP): answered in the common
 * body on the raw socket, then the connection is closed.
 */
export function clientErrorHandler (err: Error & { code?: string }, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return
  const known = err.code === 'HPE_HEADER_OVERFLOW'
    ? new Errors.HEADERS_TOO_LARGE()
    : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? new Errors.REQUEST_TIMEOUT() : new Errors.BAD_REQUEST()
  const status = known.statusCode ?? 400
  const body = JSON.stringify(errorBody(known, status))
  if (socket.writable) {
    socket.write(`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
      `Content-Type: application/json; charset=utf-8\r\nConnection: close\r\n\r\n${body}`)
  }
  socket.destroy(err)
}

/** The one error handler and the 404 handler. */
export default fp<{ bodyLimit: number }>(async (app: FastifyInstance, { bodyLimit }) => {
  app.setErrorHandler((raw: AnyError, request: FastifyRequest, reply: FastifyReply) => sendError(raw, request, reply, bodyLimit))

  const routes = new RouteMethods()
  app.addHook('onRoute', (route) => routes.add(route.url, route.method))
  app.setNotFoundHandler((request, reply) => {
    const allowed = routes.allowed(request.url.split('?', 1)[0] ?? '')
    // A route that took the method and found nothing (the docs' file server) is a 404, not a 405.
    if (allowed.length > 0 && !allowed.includes(request.method)) {
      void reply.header('Allow', allowed.join(', '))
      const err = new Errors.METHOD_NOT_ALLOWED(request.method, allowed.join(', '))
      return reply.code(405).send(errorBody(err, 405))
    }
    const err = new Errors.ROUTE_NOT_FOUND(request.method, request.url)
    return reply.code(404).send(errorBody(err, 404))
  })
}, { name: 'error-handler' })
