import { STATUS_CODES } from 'node:http'
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { Errors, type ErrorDetails } from '../errors.js'

type AnyError = FastifyError & { details?: ErrorDetails }

/** Fastify's own errors, translated into our list so callers see one set of codes. */
function translate (err: AnyError, bodyLimit: number): AnyError {
  if (err.code && err.code in Errors) return err
  if (err.validation) {
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
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new Errors.VALIDATION_FAILED('body must be a JSON object, got an empty body')
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new Errors.BODY_TOO_LARGE(bodyLimit)
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new Errors.UNSUPPORTED_MEDIA_TYPE(err.message.replace(/^Unsupported Media Type:?\s*/i, '') || 'unknown')
  }
  // The body parser marks its SyntaxErrors with 400; any other SyntaxError is ours.
  if (err instanceof SyntaxError && err.statusCode === 400) return new Errors.INVALID_JSON(err.message)
  return err
}

/** The one error handler: 4xx say what is wrong, 5xx never show internals. */
export default fp<{ bodyLimit: number }>(async (app: FastifyInstance, { bodyLimit }) => {
  app.setErrorHandler((raw: AnyError, request: FastifyRequest, reply: FastifyReply) => {
    const err = translate(raw, bodyLimit)
    const statusCode = err.statusCode !== undefined && err.statusCode >= 400 && err.statusCode < 600 ? err.statusCode : 500
    if (statusCode >= 500) {
      const known = err.code === 'REDIS_UNAVAILABLE'
      request.log[known ? 'warn' : 'error']({ err: raw }, known ? 'redis unavailable' : 'request failed')
      const safe = known ? err : new Errors.INTERNAL()
      return reply.code(safe.statusCode ?? 500).send({
        statusCode: safe.statusCode, code: safe.code, error: STATUS_CODES[safe.statusCode ?? 500], message: safe.message
      })
    }
    request.log.info({ code: err.code, message: err.message }, 'request rejected')
    return reply.code(statusCode).send({
      statusCode,
      code: err.code ?? 'BAD_REQUEST',
      error: STATUS_CODES[statusCode] ?? 'Error',
      message: err.message,
      ...err.details
    })
  })

  app.setNotFoundHandler((request, reply) => {
    const err = new Errors.ROUTE_NOT_FOUND(request.method, request.url)
    return reply.code(404).send({ statusCode: 404, code: err.code, error: 'Not Found', message: err.message })
  })
}, { name: 'error-handler' })
