import { Type, type Static } from '@sinclair/typebox'
import { CheckoutResponse, errorResponse, OrderId } from '../schemas.js'

/** The admin API's request and response schemas (docs/dashboard.md). Times are server times in ms since the epoch. */
const Ms = Type.Integer({ description: 'milliseconds' })
const At = Type.Number({ description: 'server time, ms since the epoch' })
const Count = Type.Integer({ minimum: 0 })
/** A whole number in a query string (query values arrive as text, and the API does not coerce types). */
const QueryInt = (description: string) => Type.String({ pattern: '^[0-9]{1,9}$', description })
export const queryInt = (value: string | undefined, dflt: number, min: number, max: number): number =>
  value === undefined ? dflt : Math.min(max, Math.max(min, Number(value)))

/** A lateness quantile read off the recorded buckets: the bucket's upper bound, not an exact value. */
const LatenessQuantile = (q: string) => Type.Union([Ms, Type.Null()], {
  description: `first-run lateness ${q} (ms): the upper bound of the lateness bucket (1, 2, 5, 10 … 60000 ms) it falls in, not an exact value; ` +
    'a quantile in the bucket above 60 s shows 60000; null with no run'
})

export const SummaryResponse = Type.Object({
  now: At,
  pending: Count,
  overdue: Type.Integer({ minimum: 0, description: 'past their deadline, not expired yet' }),
  expiring: Type.Object({ next1m: Count, next5m: Count, next60m: Count }),
  jobs: Type.Object({ due: Count, running: Count, retrying: Type.Integer({ minimum: 0, description: 'expiry jobs waiting for a retry' }) }),
  deadLetters: Count,
  lastHour: Type.Object({
    handled: Count,
    retried: Count,
    dead: Count,
    latenessP50Ms: LatenessQuantile('p50'),
    latenessP99Ms: LatenessQuantile('p99')
  }),
  latenessTargetMs: Ms,
  minutes: Type.Array(Type.Object({
    at: At,
    event: Count,
    sweep: Count,
    retry: Count,
    latenessP50Ms: LatenessQuantile('p50'),
    latenessP99Ms: LatenessQuantile('p99')
  }), { description: 'the last 60 minutes, oldest first: runs finished by trigger, first-run lateness' })
})

export const HistogramQuery = Type.Object({
  bucketMs: Type.Optional(QueryInt('bucket width in ms, 1000 to 86400000 (default 60000)')),
  buckets: Type.Optional(QueryInt('how many buckets, 1 to 120 (default 60)'))
}, { additionalProperties: false })
export const HistogramResponse = Type.Object({ from: At, bucketMs: Ms, counts: Type.Array(Count) })

export const HoldsQuery = Type.Object({
  prefix: Type.Optional(Type.String({ maxLength: 128, pattern: '^[A-Za-z0-9._:-]*$', description: 'order ids that start with this' })),
  cursor: Type.Optional(Type.String({ maxLength: 200 })),
  limit: Type.Optional(QueryInt('holds per page, 1 to 200 (default 50)'))
}, { additionalProperties: false })
export const HoldsResponse = Type.Object({
  now: At,
  items: Type.Array(Type.Object({ id: Type.String(), shard: Count, expiresAt: At, remainingMs: Ms })),
  next: Type.Union([Type.String(), Type.Null()], { description: 'the cursor of the next page; null after the last' }),
  scanned: Type.Integer({ description: 'index entries looked at for this page' })
})

export const TimelineResponse = Type.Object({
  id: Type.String(),
  hold: Type.Union([CheckoutResponse, Type.Null()]),
  job: Type.Union([Type.Object({
    member: Type.String(),
    generation: Type.Integer(),
    deadline: At,
    expiredAt: At,
    attempt: Type.Integer(),
    holder: Type.Union([Type.String(), Type.Null()]),
    lastError: Type.Union([Type.String(), Type.Null()]),
    diedAt: Type.Union([At, Type.Null()])
  }), Type.Null()]),
  entries: Type.Array(Type.Object({
    at: At,
    kind: Type.String({ description: 'created, extended, completed, cancelled, expired, dead (events); run (a handler run)' }),
    detail: Type.String()
  }))
})

export const LetterRef = Type.Object({ shard: Count, member: Type.String({ minLength: 3, maxLength: 160 }) }, { additionalProperties: false })
export type LetterRef = Static<typeof LetterRef>

export const DeadLettersQuery = Type.Object({
  cursor: Type.Optional(Type.String({ maxLength: 200 })),
  limit: Type.Optional(QueryInt('dead letters per page, 1 to 200 (default 50)'))
}, { additionalProperties: false })
export const DeadLettersResponse = Type.Object({
  items: Type.Array(Type.Object({
    shard: Count, member: Type.String(), id: Type.String(), generation: Type.Integer(), diedAt: At, attempts: Type.Integer(), lastError: Type.String()
  })),
  next: Type.Union([Type.String(), Type.Null()])
})

export const BulkBody = Type.Object({
  letters: Type.Optional(Type.Array(LetterRef, { minItems: 1, maxItems: 500, description: 'these dead letters (replay one, or a selection)' })),
  all: Type.Optional(Type.Boolean({ description: 'every dead letter that died at or before upTo (the dry run answers upTo)' })),
  olderThanMs: Type.Optional(Type.Integer({ minimum: 0, description: 'with all, purge only: letters that died longer ago than this' })),
  dryRun: Type.Boolean({ description: 'true: change nothing, answer how many and which; false: run, with confirmCount from the dry run' }),
  confirmCount: Type.Optional(Type.Integer({ minimum: 0 })),
  upTo: Type.Optional(At)
}, { additionalProperties: false, examples: [{ all: true, dryRun: true }, { all: true, dryRun: false, confirmCount: 3, upTo: 1764676800000 }] })
export type BulkBody = Static<typeof BulkBody>
export const BulkResponse = Type.Object({
  dryRun: Type.Boolean(),
  action: Type.String(),
  count: Type.Integer({ description: 'dry run: letters the action would take; run: letters it took' }),
  skipped: Type.Integer({ description: 'run: letters that had left the dead-letter set meanwhile' }),
  upTo: Type.Union([At, Type.Null()]),
  sample: Type.Array(LetterRef, { description: 'dry run: up to 20 of the letters' }),
  auditId: Type.Union([Type.String(), Type.Null()])
})

export const AuditResponse = Type.Object({
  items: Type.Array(Type.Object({ id: Type.String(), at: At, who: Type.String(), action: Type.String(), count: Count, detail: Type.String() }))
})

export const HealthResponse = Type.Object({
  now: At,
  workers: Type.Array(Type.Object({
    token: Type.String(), host: Type.String(), pid: Type.Integer(), ageMs: Ms, alive: Type.Boolean(), ready: Type.Boolean(),
    subscriber: Type.Boolean(),
    masters: Type.Array(Type.String(), { description: 'the masters (host:port) its expired-events subscription is up on' }),
    running: Count, concurrency: Count
  })),
  masters: Type.Array(Type.Object({
    master: Type.String({ description: 'host:port as the API connects to it' }),
    workers: Type.Integer({ minimum: 0, description: 'live workers subscribed to its expired events' }),
    subscribed: Type.Boolean({ description: 'at least one live worker is subscribed there' })
  }), { description: 'every master (one on a single Redis): whether its expired events reach a live worker' }),
  keyspaceEvents: Type.Union([Type.String(), Type.Null()], { description: 'notify-keyspace-events; null when CONFIG is blocked' }),
  evictionPolicy: Type.Union([Type.String(), Type.Null()]),
  sweepLagMs: Type.Integer({ description: 'how far past its deadline the oldest unexpired hold is; 0 when none' }),
  alerts: Type.Array(Type.Object({
    name: Type.String(),
    state: Type.Union([Type.Literal('inactive'), Type.Literal('pending'), Type.Literal('firing')], {
      description: "pending: the rule's condition holds, for less than its for: delay (docs/operations.md); firing: for that long or longer"
    }),
    firing: Type.Boolean({ description: 'state is firing' }),
    forMs: Type.Integer({ minimum: 0, description: "the rule's for: delay" }),
    since: Type.Union([At, Type.Null()], { description: 'since when the condition has held, as seen by reads of this route; null when it does not hold' }),
    summary: Type.String()
  }))
})

export const IdParams = Type.Object({ id: OrderId })
export const adminErrors = {
  400: errorResponse(400),
  404: errorResponse(404),
  409: errorResponse(409, ['COUNT_CHANGED']),
  503: errorResponse(503)
}
