import { Type, type Static } from '@sinclair/typebox'
import { STATUS_CODES } from 'node:http'
import { Errors } from './errors.js'
import { ORDER_ID_PATTERN } from './keys.js'

/** Shared TypeBox pieces; every route's schemas are built from these. */
export const OrderId = Type.String({
  minLength: 1,
  maxLength: 128,
  pattern: ORDER_ID_PATTERN,
  description: 'order id: 1-128 characters of A-Z a-z 0-9 . _ : -'
})

const TtlMs = Type.Integer({ description: 'hold time in milliseconds' })
const ExpireSeconds = Type.Integer({ description: 'hold time in seconds (older clients); not together with ttlMs' })
const Timestamp = Type.String({ format: 'date-time', description: 'ISO 8601' })
const Payload = Type.Object({}, {
  additionalProperties: true,
  description: 'any JSON object up to 16 KiB serialized, handed to the expiry handler'
})

export const IdParams = Type.Object({ id: OrderId })
export type IdParams = Static<typeof IdParams>

/** The write routes take an optional Idempotency-Key. */
export const IdempotencyHeaders = Type.Object({
  'idempotency-key': Type.Optional(Type.String({
    minLength: 1,
    maxLength: 255,
    pattern: '^[\\x21-\\x7e]+$',
    description: 'the same key with the same request within 24 h returns the first response again (header Idempotent-Replayed: true); ' +
      'with another request: 422 IDEMPOTENCY_KEY_REUSED. 1-255 visible ASCII characters, scoped to the order id'
  }))
})

export const CreateCheckoutBody = Type.Object({
  id: OrderId,
  ttlMs: Type.Optional(TtlMs),
  expire: Type.Optional(ExpireSeconds),
  payload: Type.Optional(Payload)
}, { additionalProperties: false, examples: [{ id: 'order-1001', ttlMs: 900000, payload: { cart: ['sku-1'], paymentIntent: 'pi_123' } }] })
export type CreateCheckoutBody = Static<typeof CreateCheckoutBody>

export const ExtendCheckoutBody = Type.Object({
  ttlMs: Type.Optional(TtlMs),
  expire: Type.Optional(ExpireSeconds)
}, { additionalProperties: false, examples: [{ ttlMs: 600000 }] })
export type ExtendCheckoutBody = Static<typeof ExtendCheckoutBody>

/** Complete and cancel take no body; `{}` is allowed for clients that always send one. */
export const EmptyBody = Type.Object({}, { additionalProperties: false, description: 'no body, or {}' })

export const CheckoutStatus = Type.Union([
  Type.Literal('pending'), Type.Literal('expired'), Type.Literal('completed'), Type.Literal('cancelled')
])

export const CheckoutResponse = Type.Object({
  id: Type.String(),
  status: CheckoutStatus,
  generation: Type.Integer({ description: 'the hold\'s identity: grows with every hold of this id and is never reused (not consecutive)' }),
  ttl: Type.Integer({ description: 'whole seconds left, rounded up; 0 once ended' }),
  ttlMs: Type.Integer({ description: 'milliseconds left; 0 once ended' }),
  createdAt: Timestamp,
  expiresAt: Timestamp,
  payload: Type.Optional(Payload),
  expiredAt: Type.Optional(Timestamp),
  completedAt: Type.Optional(Timestamp),
  cancelledAt: Type.Optional(Timestamp),
  outcome: Type.Optional(Type.Union([
    Type.Literal('pending'), Type.Literal('retrying'), Type.Literal('handled'), Type.Literal('dead')
  ], { description: 'expired orders only: how the expiry handler fared' })),
  handledAt: Type.Optional(Timestamp),
  attempts: Type.Optional(Type.Integer()),
  lastError: Type.Optional(Type.String())
}, {
  examples: [{
    id: 'order-1001', status: 'expired', generation: 7, ttl: 0, ttlMs: 0,
    createdAt: '2026-11-23T10:00:00.000Z', expiresAt: '2026-11-23T10:15:00.000Z', payload: { cart: ['sku-1'] },
    expiredAt: '2026-11-23T10:15:00.004Z', outcome: 'handled', handledAt: '2026-11-23T10:15:00.031Z', attempts: 1
  }]
})
export type CheckoutResponse = Static<typeof CheckoutResponse>

export const EndedResponse = Type.Object({
  id: Type.String(),
  status: Type.Union([Type.Literal('completed'), Type.Literal('cancelled')]),
  completedAt: Type.Optional(Timestamp),
  cancelledAt: Type.Optional(Timestamp)
}, { examples: [{ id: 'order-1001', status: 'completed', completedAt: '2026-11-23T10:05:12.345Z' }] })

/**
 * The common error body; for one status, its `code` lists the codes that
 * status can carry (from the one error list, or `only` those of them), so
 * the API document names every error code.
 */
export function errorResponse (status?: number, only?: ReadonlyArray<keyof typeof Errors>) {
  const codes = Object.entries(Errors)
    .filter(([, E]) => status === undefined || new E('x', 1, 1).statusCode === status)
    .map(([code]) => code)
    .filter((code) => only === undefined || (only as readonly string[]).includes(code))
  return Type.Object({
    statusCode: Type.Integer(),
    code: Type.String({ enum: codes, description: 'stable: match on this, not on the message' }),
    error: Type.String({ description: 'the HTTP reason phrase' }),
    message: Type.String({ description: 'what is wrong, for a person' }),
    ttlMs: Type.Optional(Type.Integer({ description: 'CHECKOUT_EXISTS: time left on the existing hold' })),
    status: Type.Optional(Type.String({ description: 'CHECKOUT_NOT_PENDING: the status the order has' }))
  }, status === undefined ? {} : { examples: [{ statusCode: status, code: codes[0], error: STATUS_CODES[status], message: '…' }] })
}

export const HealthResponse = Type.Object({ status: Type.String() })
