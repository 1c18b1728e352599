import { Errors, withDetails } from '../errors.js'
import { run, type StoreContext } from './context.js'

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

const orderKeys = (ctx: StoreContext, id: string) => {
  const k = ctx.keys.order(id)
  return { k, keys: [k.order, k.timer, k.deadlines, k.jobs] }
}

export async function createHold (ctx: StoreContext, hold: NewHold): Promise<CheckoutView> {
  const { k, keys } = orderKeys(ctx, hold.id)
  const payload = hold.payload === undefined ? '' : JSON.stringify(hold.payload)
  const reply = await run(ctx, 'create', [...keys, k.holds], [k.base, hold.id, hold.ttlMs, payload, ctx.retentionMs])
  if (reply[0] === -1) {
    const ttlMs = Math.max(0, Number(reply[1]))
    throw withDetails(new Errors.CHECKOUT_EXISTS(hold.id, ttlMs), { ttlMs })
  }
  const [, generation, createdAt, expiresAt] = reply.map(Number) as [number, number, number, number]
  return {
    id: hold.id,
    generation,
    status: 'pending',
    createdAt,
    expiresAt,
    remainingMs: expiresAt - createdAt,
    ...(hold.payload === undefined ? {} : { payload: hold.payload })
  }
}

export async function getCheckout (ctx: StoreContext, id: string): Promise<CheckoutView> {
  const k = ctx.keys.order(id)
  const reply = await run(ctx, 'get', [k.order], [])
  const now = Number(reply[0])
  if (reply.length < 3) throw new Errors.CHECKOUT_NOT_FOUND(id)
  const f: Record<string, string> = {}
  for (let i = 1; i + 1 < reply.length; i += 2) f[String(reply[i])] = String(reply[i + 1])
  return toView(id, f, now)
}

/** Turns the order hash (fields documented in docs/keys.md) into the public view. */
function toView (id: string, f: Record<string, string>, now: number): CheckoutView {
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

function notPending (id: string, reply: unknown[]): never {
  if (reply[0] === -2) throw new Errors.CHECKOUT_NOT_FOUND(id)
  const status = String(reply[1])
  throw withDetails(new Errors.CHECKOUT_NOT_PENDING(id, status), { status })
}

export interface EndedHold {
  id: string
  status: 'completed' | 'cancelled'
  endedAt: number
  generation: number
}

/** Completes or cancels a pending hold; its expiry handler will never run. */
export async function endHold (
  ctx: StoreContext, id: string, status: 'completed' | 'cancelled'
): Promise<EndedHold> {
  const { k, keys } = orderKeys(ctx, id)
  const reply = await run(ctx, 'end', keys, [k.base, id, status, ctx.retentionMs])
  if (reply[0] !== 1) notPending(id, reply)
  return { id, status, endedAt: Number(reply[1]), generation: Number(reply[2]) }
}

/** Moves a pending hold's deadline to now + ttlMs. The view it returns leaves out the payload. */
export async function extendHold (ctx: StoreContext, id: string, ttlMs: number): Promise<CheckoutView> {
  const { k, keys } = orderKeys(ctx, id)
  const reply = await run(ctx, 'extend', keys, [k.base, id, ttlMs, ctx.retentionMs])
  if (reply[0] !== 1) notPending(id, reply)
  const [, now, expiresAt, generation, createdAt] = reply.map(Number) as [number, number, number, number, number]
  return { id, generation, status: 'pending', createdAt, expiresAt, remainingMs: expiresAt - now }
}

/** Answers when Redis answers: the readiness check. */
export async function pingStore (ctx: StoreContext): Promise<void> {
  // Not ready while refusing every call (a key layout that does not match the data).
  if (ctx.refusal) throw ctx.refusal
  try {
    await ctx.redis.ping()
  } catch (err) {
    throw new Errors.REDIS_UNAVAILABLE({ cause: err })
  }
}
