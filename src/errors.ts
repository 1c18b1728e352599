import createError from '@fastify/error'

/**
 * Every error this service answers with: a stable code callers can match on,
 * a message template and an HTTP status. Nothing else creates error bodies.
 */
export const Errors = {
  CHECKOUT_EXISTS: createError('CHECKOUT_EXISTS', 'Order %s is already held (%d ms left)', 409),
  CHECKOUT_NOT_FOUND: createError('CHECKOUT_NOT_FOUND', 'No checkout hold for order %s', 404),
  CHECKOUT_NOT_PENDING: createError('CHECKOUT_NOT_PENDING', 'Order %s is no longer pending: it is %s', 409),
  VALIDATION_FAILED: createError('VALIDATION_FAILED', '%s', 400),
  TTL_OUT_OF_RANGE: createError('TTL_OUT_OF_RANGE', 'Hold time %d ms is out of range: allowed %d to %d ms', 400),
  IDEMPOTENCY_KEY_REUSED: createError('IDEMPOTENCY_KEY_REUSED',
    'This Idempotency-Key was used with a different request in the last 24 h; send a new key with a new request', 422),
  PAYLOAD_TOO_LARGE: createError('PAYLOAD_TOO_LARGE', 'payload is %d bytes serialized; at most %d allowed', 413),
  BODY_TOO_LARGE: createError('BODY_TOO_LARGE', 'Request body is larger than %d bytes', 413),
  BODY_TOO_DEEP: createError('BODY_TOO_DEEP', 'Request body is nested deeper than %d levels of objects and arrays', 400),
  FORBIDDEN_KEY: createError('FORBIDDEN_KEY', 'Request body has a "__proto__" or "constructor.prototype" key; this API refuses them because they can change how objects behave', 400),
  INVALID_JSON: createError('INVALID_JSON', 'Request body is not valid JSON: %s', 400),
  UNSUPPORTED_MEDIA_TYPE: createError('UNSUPPORTED_MEDIA_TYPE', 'Content-Type %s is not supported; send application/json', 415),
  METHOD_NOT_ALLOWED: createError('METHOD_NOT_ALLOWED', 'Method %s is not allowed here; this path takes %s', 405),
  ROUTE_NOT_FOUND: createError('ROUTE_NOT_FOUND', 'Route %s %s not found', 404),
  INVALID_URL: createError('INVALID_URL', 'The URL is not valid: %s', 400),
  URL_TOO_LONG: createError('URL_TOO_LONG', 'A path parameter is longer than %d characters', 414),
  HEADERS_TOO_LARGE: createError('HEADERS_TOO_LARGE', 'Request headers are larger than the server accepts', 431),
  REQUEST_TIMEOUT: createError('REQUEST_TIMEOUT', 'The request was not received in time', 408),
  BAD_REQUEST: createError('BAD_REQUEST', 'The request is not valid HTTP', 400),
  UNAUTHORIZED: createError('UNAUTHORIZED', '%s', 401),
  RATE_LIMITED: createError('RATE_LIMITED', 'Too many requests; retry in %d s', 429),
  REDIS_UNAVAILABLE: createError('REDIS_UNAVAILABLE', 'Storage is unavailable; retry shortly', 503),
  INVALID_CURSOR: createError('INVALID_CURSOR', '%s', 400),
  CONFIRMATION_REQUIRED: createError('CONFIRMATION_REQUIRED', '%s', 400),
  COUNT_CHANGED: createError('COUNT_CHANGED', 'The selection now holds %d dead letters, not the %d confirmed; run the dry run again', 409),
  INTERNAL: createError('INTERNAL', 'Internal server error', 500)
} as const

/** Extra fields an error may carry into the response body (e.g. the remaining ttlMs of a 409). */
export interface ErrorDetails {
  ttlMs?: number
  status?: string
}

export function withDetails<E extends Error> (err: E, details: ErrorDetails): E & { details: ErrorDetails } {
  return Object.assign(err, { details })
}
