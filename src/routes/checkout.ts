import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyReply, FastifyRequest } from 'fastify'
import fastJson from 'fast-json-stringify'
import { Errors } from '../errors.js'
import { markReplayed } from '../plugins/idempotency.js'
import type { CheckoutLimits } from '../plugins/store.js'
import {
  CheckoutResponse, CreateCheckoutBody, EmptyBody, EndedResponse, errorResponse, ExtendCheckoutBody, IdempotencyHeaders, IdParams
} from '../schemas.js'
import { readCheckout } from '../store/cached-read.js'
import { createHold, endHold, extendHold, type CheckoutView } from '../store/checkout-store.js'

const iso = (ms: number) => new Date(ms).toISOString()

/** `ttlMs` or the older clients' `expire` (seconds), checked against the configured bounds. */
export function resolveTtlMs (body: { ttlMs?: number | undefined, expire?: number | undefined }, limits: CheckoutLimits): number {
  if (body.ttlMs !== undefined && body.expire !== undefined) {
    throw new Errors.VALIDATION_FAILED('give either ttlMs (milliseconds) or expire (seconds), not both')
  }
  const ttlMs = body.ttlMs ?? (body.expire !== undefined ? body.expire * 1000 : limits.defaultTtlMs)
  if (ttlMs < limits.minTtlMs || ttlMs > limits.maxTtlMs) {
    throw new Errors.TTL_OUT_OF_RANGE(ttlMs, limits.minTtlMs, limits.maxTtlMs)
  }
  return ttlMs
}

const endedField = { expired: 'expiredAt', completed: 'completedAt', cancelled: 'cancelledAt' } as const

export function toResponse (view: CheckoutView): CheckoutResponse {
  const res: CheckoutResponse = {
    id: view.id,
    status: view.status,
    generation: view.generation,
    ttl: Math.ceil(view.remainingMs / 1000),
    ttlMs: view.remainingMs,
    createdAt: iso(view.createdAt),
    expiresAt: iso(view.expiresAt)
  }
  if (view.payload !== undefined) res.payload = view.payload
  if (view.endedAt !== undefined && view.status !== 'pending') res[endedField[view.status]] = iso(view.endedAt)
  if (view.outcome !== undefined) res.outcome = view.outcome
  if (view.handledAt !== undefined) res.handledAt = iso(view.handledAt)
  if (view.attempts !== undefined) res.attempts = view.attempts
  if (view.lastError !== undefined) res.lastError = view.lastError
  return res
}

/**
 * The 200 answer of GET /checkout/:id from its response schema, as Fastify
 * serializes it: what the read cache keeps of a hold (test/read-cache.test.ts
 * checks a hit against a miss byte for byte).
 */
const checkoutJson = fastJson(CheckoutResponse)
const renderCheckout = (view: CheckoutView): string => checkoutJson(toResponse(view))
const JSON_TYPE = 'application/json; charset=utf-8'

/** Error responses by status; every route can also answer 500 INTERNAL. */
const errors = (...statuses: number[]) => Object.fromEntries([...statuses, 500].map((status) => [status, errorResponse(status)]))

/** Every route here needs a token when tokens are set, and counts against the rate limit (see plugins/route-access.ts). */
const config = { access: 'api' } as const

const checkoutRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.post('/checkout', {
    config,
    schema: {
      summary: 'Hold an order for a limited time',
      tags: ['checkout'],
      body: CreateCheckoutBody,
      headers: IdempotencyHeaders,
      response: { 201: CheckoutResponse, ...errors(400, 409, 413, 415, 422, 503) }
    }
  }, async (request, reply) => {
    const { id, payload } = request.body
    const ttlMs = resolveTtlMs(request.body, app.limits)
    if (payload !== undefined) {
      const bytes = Buffer.byteLength(JSON.stringify(payload))
      if (bytes > app.limits.maxPayloadBytes) throw new Errors.PAYLOAD_TOO_LARGE(bytes, app.limits.maxPayloadBytes)
    }
    const view = await createHold(app.store, { id, ttlMs, payload }, request.idempotency)
    markReplayed(reply, view)
    if (!view.replayed) request.log.info({ orderId: id, ttlMs, generation: view.generation }, 'checkout held')
    return reply.code(201).send(toResponse(view))
  })

  app.get('/checkout/:id', {
    config,
    schema: {
      summary: 'Read a hold: time left while pending, the outcome once ended',
      tags: ['checkout'],
      params: IdParams,
      response: { 200: CheckoutResponse, ...errors(400, 404, 503) }
    }
  }, async (request, reply) => {
    let read
    try {
      read = await readCheckout(app.store, request.params.id, renderCheckout)
    } catch (err) {
      // With READ_CACHE on, every answer says whether it came from the cache; a 404 or 503 is always a miss.
      if (app.store.readCache) void reply.header('x-cache', 'miss')
      throw err
    }
    if (read.cache === undefined) return toResponse(read.view)
    void reply.header('x-cache', read.cache)
    // A hit is the answer already serialized: a string with its content type is sent as it is
    // (the schema types the reply's object, hence the cast).
    if (read.json !== undefined) return reply.type(JSON_TYPE).send(read.json as unknown as CheckoutResponse)
    return toResponse(read.view)
  })

  app.patch('/checkout/:id', {
    config,
    schema: {
      summary: 'Move the deadline of a pending hold to now + the given time',
      tags: ['checkout'],
      params: IdParams,
      body: ExtendCheckoutBody,
      headers: IdempotencyHeaders,
      response: { 200: CheckoutResponse, ...errors(400, 404, 409, 422, 503) }
    }
  }, async (request, reply) => {
    if (request.body.ttlMs === undefined && request.body.expire === undefined) {
      throw new Errors.VALIDATION_FAILED('give ttlMs (milliseconds) or expire (seconds)')
    }
    const ttlMs = resolveTtlMs(request.body, app.limits)
    const view = await extendHold(app.store, request.params.id, ttlMs, request.idempotency)
    markReplayed(reply, view)
    return toResponse(view)
  })

  // Complete and cancel differ only in the status they record.
  const endSchema = (summary: string) => ({
    summary, tags: ['checkout'], params: IdParams, headers: IdempotencyHeaders, body: EmptyBody, response: { 200: EndedResponse, ...errors(400, 404, 409, 422, 503) }
  })
  const end = async (request: FastifyRequest, reply: FastifyReply, status: 'completed' | 'cancelled') => {
    const { id } = request.params as IdParams
    const ended = await endHold(app.store, id, status, request.idempotency)
    markReplayed(reply, ended)
    // A retry of an ended hold changed nothing: neither a log line nor a count.
    if (ended.replayed || ended.repeated) request.holdUnchanged = true
    else request.log.info({ orderId: ended.id }, `checkout ${status}`)
    return { id: ended.id, status: ended.status, [endedField[status]]: iso(ended.endedAt) }
  }

  // No body is the usual call: validated as `{}`, so any other body is refused like an unknown field.
  const noBodyIsEmpty = async (request: FastifyRequest) => { request.body ??= {} }

  app.post('/checkout/:id/complete', { config, preValidation: noBodyIsEmpty, schema: endSchema('Complete a pending hold; its expiry handler never runs') },
    async (request, reply) => await end(request, reply, 'completed'))

  app.delete('/checkout/:id', { config, preValidation: noBodyIsEmpty, schema: endSchema('Cancel a pending hold; its expiry handler never runs') },
    async (request, reply) => await end(request, reply, 'cancelled'))
}

export default checkoutRoutes
