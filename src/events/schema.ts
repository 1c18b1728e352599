import { Type, type Static, type TSchema } from '@sinclair/typebox'
import { Value } from '@sinclair/typebox/value'

/**
 * The lifecycle events of a hold as consumers read them from
 * `<KEY_PREFIX>events` (docs/events.md). Version 1. Payload contents are
 * never in an event (they may hold personal data, and the stream is kept
 * and read widely): only their size.
 */
export const EVENT_VERSION = 1

const IsoTime = Type.String({ pattern: '^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}\\.\\d{3}Z$', description: 'ISO 8601, UTC, ms' })

function event<T extends string, P extends Record<string, TSchema>> (type: T, props: P) {
  return Type.Object({
    v: Type.Literal(EVENT_VERSION),
    /** Stable across relays: a consumer that has seen it drops the event. */
    eventId: Type.String({ minLength: 1 }),
    type: Type.Literal(type),
    orderId: Type.String({ minLength: 1 }),
    generation: Type.Integer({ minimum: 1 }),
    /** When it happened (Redis server time). */
    at: IsoTime,
    ...props
  }, { additionalProperties: false })
}

export const CreatedEvent = event('created', {
  expiresAt: IsoTime,
  ttlMs: Type.Integer({ minimum: 1 }),
  payloadBytes: Type.Integer({ minimum: 0, description: 'size of the payload JSON; 0 when none' })
})
export const ExtendedEvent = event('extended', { expiresAt: IsoTime, ttlMs: Type.Integer({ minimum: 1 }) })
export const CompletedEvent = event('completed', {})
export const CancelledEvent = event('cancelled', {})
/** `at` is when the expiry was recorded, `expiresAt` the deadline the hold ran out at. */
export const ExpiredEvent = event('expired', { expiresAt: IsoTime, payloadBytes: Type.Integer({ minimum: 0 }) })
/** The expiry handlers used up their attempts; the job is in the dead-letter set. */
export const DeadEvent = event('dead', { attempts: Type.Integer({ minimum: 1 }), lastError: Type.String() })

export const LifecycleEvent = Type.Union([CreatedEvent, ExtendedEvent, CompletedEvent, CancelledEvent, ExpiredEvent, DeadEvent])
export type LifecycleEvent = Static<typeof LifecycleEvent>
export type EventType = LifecycleEvent['type']

export class InvalidEventError extends Error {
  override name = 'InvalidEventError'
}

/**
 * A stream entry is flat field/value pairs: `eventId`, `type` (both also in
 * the event, there to filter on without parsing) and `data`, the event as
 * JSON. Writers build the arguments of XADD with this.
 */
export function eventFields (event: LifecycleEvent): string[] {
  return ['eventId', event.eventId, 'type', event.type, 'data', JSON.stringify(event)]
}

/**
 * Parses the fields of one entry (as XREADGROUP / XRANGE return them,
 * `[field, value, ...]`) into a checked event. Throws InvalidEventError for
 * an entry that is not a version-1 event, so a consumer can park it.
 */
export function parseEventEntry (fields: readonly string[]): LifecycleEvent {
  const map = new Map<string, string>()
  for (let i = 0; i + 1 < fields.length; i += 2) map.set(fields[i] as string, fields[i + 1] as string)
  const data = map.get('data')
  if (data === undefined) throw new InvalidEventError('the entry has no data field')
  let parsed: unknown
  try {
    parsed = JSON.parse(data)
  } catch {
    throw new InvalidEventError('the data field is not JSON')
  }
  if (!Value.Check(LifecycleEvent, parsed)) {
    const first = Value.Errors(LifecycleEvent, parsed).First()
    throw new InvalidEventError(`not a version ${EVENT_VERSION} event${first ? `: ${first.path || '/'} ${first.message}` : ''}`)
  }
  return parsed
}
