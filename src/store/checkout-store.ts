import { Errors, withDetails } from '../errors.js'
import { isRedisUnavailable } from '../redis/errors.js'
import { waitForReplicas } from '../redis/wait.js'
import { outboxCap, run, type StoreContext } from './context.js'
import { direct } from './direct.js'
import { packingArg } from '../keys.js'
import type { ScriptName } from './scripts.js'
import { changeMigrating, createMigrating, getMigrating, idempotencyRecordKey, layouts } from './migrating-store.js'

/**
 * The checkout store: plain functions over Redis that the API, the worker,
 * a CLI or a Lambda handler can all call. Each operation is one script, so
 * each is atomic and touches the keys of one shard only.
 */
export type CheckoutStatus = 'pending' | 'expired' | 'completed' | 'cancelled'
/** How the expiry handler of an expired order fared. */
export type ExpiryOutcome = 'pending' | 'retrying' | 'handled' | 'dead'

export interface CheckoutView {
  id: string
  generation: number
  status: CheckoutStatus
  createdAt: number
  expiresAt: number
  /** Time left before the deadline; 0 once the hold has ended. */
  remainingMs: number
  payload?: Record<string, unknown>
  /** When the hold ended (expired, completed or cancelled). */
  endedAt?: number
  outcome?: ExpiryOutcome
  handledAt?: number
  attempts?: number
  lastError?: string
}

export interface NewHold {
  id: string
  ttlMs: number
  payload?: Record<string, unknown> | undefined
}

/** Long enough to outlive the check that wrote it, short enough to leave nothing behind. */
const READY_PROBE_TTL_MS = 10_000

const orderKeys = (ctx: StoreContext, id: string) => {
  const k = ctx.keys.order(id)
  return { k, keys: [k.order, k.timer, k.deadlines, k.jobs] }
}

/** Key format 3 keeps pending holds packed (docs/keys.md): its own scripts, with the listpack limits as an argument. */
const packed = (ctx: StoreContext): boolean => ctx.keys.format === 3

/** How long a request's Idempotency-Key is remembered. */
export const IDEMPOTENCY_TTL_MS = 24 * 3_600_000

/** A request's Idempotency-Key and what identifies the request itself (method, route, id, body). */
export interface Idempotency {
  key: string
  fingerprint: string
}

/** Set on what a store call returns or throws when it is the first reply to the same request, sent again. */
export interface Replayable {
  replayed?: boolean
}

/**
 * Runs a write script, with the shard's event outbox and the idempotency
 * record as its last keys and the outbox cap, the request fingerprint and
 * the record's ttl as its last arguments: the script answers a repeated
 * request with the first reply (see includes/idempotency.lua) and writes
 * no second event. Keys are scoped to the order id.
 */
async function runWrite (
  ctx: StoreContext, name: ScriptName, id: string, keys: string[], args: Array<string | number>, idem: Idempotency | undefined
): Promise<{ reply: unknown[], replayed: boolean, kept?: string }> {
  const { outbox } = ctx.keys.order(id)
  const record = idempotencyRecordKey(ctx.keys, id, idem)
  const reply = await run(ctx, name, [...keys, outbox, record], [...args, outboxCap(ctx), idem?.fingerprint ?? '', IDEMPOTENCY_TTL_MS])
  await replicated(ctx, ctx.keys.order(id).order)
  if (reply[0] === 'conflict') throw new Errors.IDEMPOTENCY_KEY_REUSED()
  if (reply[0] === 'replay') {
    const kept = typeof reply[2] === 'string' ? { kept: reply[2] } : {}
    return { reply: JSON.parse(String(reply[1])) as unknown[], replayed: true, ...kept }
  }
  return { reply, replayed: false }
}

/**
 * With REDIS_WAIT_REPLICAS, a write is acknowledged only once that many
 * replicas have it: the primary can fail over to any of them without losing
 * the hold. Fewer in time answers 503 although the write happened on the
 * primary: a hold we cannot promise to keep is not reported as held, and the
 * client's retry (with its Idempotency-Key) gets the first reply once the
 * replicas catch up. docs/deploy.md explains the choice.
 */
async function replicated (ctx: StoreContext, key: string): Promise<void> {
  if (!ctx.waitReplicas) return
  const { replicas, timeoutMs } = ctx.waitReplicas
  let acknowledged: number
  try {
    acknowledged = await waitForReplicas(ctx.redis, key, replicas, timeoutMs)
  } catch (err) {
    throw new Errors.REDIS_UNAVAILABLE({ cause: err })
  }
  if (acknowledged < replicas) {
    throw new Errors.REDIS_UNAVAILABLE({
      cause: new Error(`WAIT: ${acknowledged} of ${replicas} replicas acknowledged the write within ${timeoutMs} ms (REDIS_WAIT_REPLICAS)`)
    })
  }
}

/** Marks an error thrown for a replayed request, so the response says so. */
function replayedError<E extends Error> (err: E, replayed: boolean): E {
  return replayed ? Object.assign(err, { replayed: true }) : err
}

export async function createHold (ctx: StoreContext, hold: NewHold, idem?: Idempotency): Promise<CheckoutView & Replayable> {
  const l = layouts(ctx)
  return l ? await createMigrating(l, hold, idem, createIn, getIn) : await createIn(ctx, hold, idem)
}

async function createIn (ctx: StoreContext, hold: NewHold, idem?: Idempotency): Promise<CheckoutView & Replayable> {
  const { k, keys } = orderKeys(ctx, hold.id)
  const payload = hold.payload === undefined ? '' : JSON.stringify(hold.payload)
  const { reply, replayed, kept } = packed(ctx)
    ? await runWrite(ctx, 'packed-create', hold.id, [k.table, k.index, k.jobs, k.holds, k.order, k.shardTimer],
      [k.base, hold.id, hold.ttlMs, payload, ctx.retentionMs, packingArg(ctx.keys.packing)], idem)
    : await runWrite(ctx, 'create', hold.id, [...keys, k.holds], [k.base, hold.id, hold.ttlMs, payload, ctx.retentionMs], idem)
  if (reply[0] === -1) {
    const ttlMs = Math.max(0, Number(reply[1]))
    throw replayedError(withDetails(new Errors.CHECKOUT_EXISTS(hold.id, ttlMs), { ttlMs }), replayed)
  }
  const [, generation, createdAt, expiresAt] = reply.map(Number) as [number, number, number, number]
  return {
    id: hold.id,
    generation,
    status: 'pending',
    createdAt,
    expiresAt,
    remainingMs: expiresAt - createdAt,
    // A replay answers the payload as the first request sent it: the retry's may order its keys otherwise.
    ...(kept !== undefined ? { payload: JSON.parse(kept) as Record<string, unknown> } : hold.payload === undefined ? {} : { payload: hold.payload }),
    replayed
  }
}

export async function getCheckout (ctx: StoreContext, id: string): Promise<CheckoutView> {
  const l = layouts(ctx)
  return l ? await getMigrating(l, id, getIn) : await getIn(ctx, id)
}

async function getIn (ctx: StoreContext, id: string): Promise<CheckoutView> {
  const k = ctx.keys.order(id)
  const reply = packed(ctx)
    ? await read(ctx, 'packed-get', [k.table, k.order], [k.base, id, packingArg(ctx.keys.packing)])
    : await read(ctx, 'get', [k.order])
  const now = Number(reply[0])
  if (reply.length < 3) throw new Errors.CHECKOUT_NOT_FOUND(id)
  return toView(id, hashFields(reply), now)
}

/** The order hash from the get script's reply `{ now, field1, value1, ... }`. */
export function hashFields (reply: unknown[]): Record<string, string> {
  const f: Record<string, string> = {}
  for (let i = 1; i + 1 < reply.length; i += 2) f[String(reply[i])] = String(reply[i + 1])
  return f
}

/**
 * A read that may be served by a replica (REDIS_READ_FROM=replica); while
 * the replica is away it goes to the primary instead.
 */
async function read (ctx: StoreContext, name: 'get' | 'packed-get', keys: string[], args: string[] = []): Promise<unknown[]> {
  if (!ctx.reader) return await run(ctx, name, keys, args)
  try {
    return await run(ctx, name, keys, args, ctx.reader)
  } catch (err) {
    if (!isRedisUnavailable((err as Error).cause)) throw err
    return await run(ctx, name, keys, args)
  }
}

/** Turns the order hash (fields documented in docs/keys.md) into the public view. */
export function toView (id: string, f: Record<string, string>, now: number): CheckoutView {
  const expiresAt = Number(f.d)
  let status = f.s as CheckoutStatus
  // A hold past its deadline has expired even if no script has recorded it yet.
  const lapsed = status === 'pending' && expiresAt <= now
  if (lapsed) status = 'expired'
  const view: CheckoutView = {
    id,
    generation: Number(f.g),
    status,
    createdAt: Number(f.c),
    expiresAt,
    remainingMs: status === 'pending' ? expiresAt - now : 0
  }
  if (f.p !== undefined) view.payload = JSON.parse(f.p) as Record<string, unknown>
  if (f.t !== undefined) view.endedAt = Number(f.t)
  if (status === 'expired') view.outcome = lapsed ? 'pending' : (f.h as ExpiryOutcome)
  if (f.ha !== undefined) view.handledAt = Number(f.ha)
  if (f.a !== undefined) view.attempts = Number(f.a)
  if (f.e !== undefined) view.lastError = f.e
  return view
}

function notPending (id: string, reply: unknown[], replayed: boolean): never {
  if (reply[0] === -2) throw replayedError(new Errors.CHECKOUT_NOT_FOUND(id), replayed)
  const status = String(reply[1])
  throw replayedError(withDetails(new Errors.CHECKOUT_NOT_PENDING(id, status), { status }), replayed)
}

export interface EndedHold {
  id: string
  status: 'completed' | 'cancelled'
  endedAt: number
  generation: number
  /** The hold had already ended this way (a retry): nothing changed. */
  repeated: boolean
}

/** Completes or cancels a pending hold; its expiry handler will never run. */
export async function endHold (
  ctx: StoreContext, id: string, status: 'completed' | 'cancelled', idem?: Idempotency
): Promise<EndedHold & Replayable> {
  const l = layouts(ctx)
  return l ? await changeMigrating(l, id, idem, [id, status, idem], endIn, getIn) : await endIn(ctx, id, status, idem)
}

async function endIn (
  ctx: StoreContext, id: string, status: 'completed' | 'cancelled', idem?: Idempotency
): Promise<EndedHold & Replayable> {
  const { k, keys } = orderKeys(ctx, id)
  const { reply, replayed } = packed(ctx)
    ? await runWrite(ctx, 'packed-end', id, [k.table, k.index, k.order], [k.base, id, status, ctx.retentionMs, packingArg(ctx.keys.packing)], idem)
    : await runWrite(ctx, 'end', id, keys, [k.base, id, status, ctx.retentionMs], idem)
  if (reply[0] !== 1) notPending(id, reply, replayed)
  return { id, status, endedAt: Number(reply[1]), generation: Number(reply[2]), repeated: Number(reply[3]) === 1, replayed }
}

/** Moves a pending hold's deadline to now + ttlMs. The view it returns leaves out the payload. */
export async function extendHold (
  ctx: StoreContext, id: string, ttlMs: number, idem?: Idempotency
): Promise<CheckoutView & Replayable> {
  const l = layouts(ctx)
  return l ? await changeMigrating(l, id, idem, [id, ttlMs, idem], extendIn, getIn) : await extendIn(ctx, id, ttlMs, idem)
}

async function extendIn (
  ctx: StoreContext, id: string, ttlMs: number, idem?: Idempotency
): Promise<CheckoutView & Replayable> {
  const { k, keys } = orderKeys(ctx, id)
  const { reply, replayed } = packed(ctx)
    ? await runWrite(ctx, 'packed-extend', id, [k.table, k.index, k.shardTimer], [k.base, id, ttlMs, ctx.retentionMs, packingArg(ctx.keys.packing)], idem)
    : await runWrite(ctx, 'extend', id, keys, [k.base, id, ttlMs, ctx.retentionMs], idem)
  if (reply[0] !== 1) notPending(id, reply, replayed)
  const [, now, expiresAt, generation, createdAt] = reply.map(Number) as [number, number, number, number, number]
  return { id, generation, status: 'pending', createdAt, expiresAt, remainingMs: expiresAt - now, replayed }
}

/** Answers when Redis answers: the readiness check. */
export async function pingStore (ctx: StoreContext): Promise<void> {
  // Not ready while refusing every call (a key layout that does not match the data).
  if (ctx.refusal) throw ctx.refusal
  // A write, not a PING: a Redis that answers but refuses writes (OOM under noeviction, MISCONF)
  // cannot take a hold, so the API is not ready. A few bytes that expire on their own.
  await direct(ctx, async () => await ctx.redis.set(ctx.keys.readyProbe, '1', 'PX', READY_PROBE_TTL_MS))
}
