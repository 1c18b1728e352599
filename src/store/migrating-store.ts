import { createHash } from 'node:crypto'
import { Errors, withDetails } from '../errors.js'
import type { Keyspace } from '../keys.js'
import type { StoreContext } from './context.js'

/**
 * The checkout store while a prefix migrates to key format 3 (docs/keys.md
 * "Migrating to format 3"): a hold may live in the old layout or in the new
 * one. Each operation stays one script on one layout; this module picks the
 * layout. The store functions of checkout-store.ts hand in their
 * one-layout versions, so nothing here depends back on them.
 */
export interface OneLayout<A extends unknown[], R> {
  (ctx: StoreContext, ...args: A): Promise<R>
}

interface MinimalIdempotency { key: string }

/** The record of one Idempotency-Key sent for an order, under the order's shard base (includes/idempotency.lua). */
export function idempotencyRecordKey (keys: Keyspace, id: string, idem: MinimalIdempotency | undefined): string {
  const base = keys.order(id).base
  return idem ? `${base}idem:${id}:${createHash('sha256').update(idem.key).digest('hex').slice(0, 32)}` : `${base}idem:`
}

interface Layouts {
  /** Format 3. */
  next: StoreContext
  legacy: StoreContext
  /** Where new holds go in the current phase: `legacy` during 'dual-read', else `next`. */
  writes: StoreContext
  /** Format 2 to 3 keeps the shard bases: idempotency records, jobs and ended holds are the same keys in both. */
  sharedBases: boolean
}

export function layouts (ctx: StoreContext): Layouts | undefined {
  const m = ctx.keys.migration
  if (!m) return undefined
  const { migration: _m, ...nextKeys } = ctx.keys
  const next = { ...ctx, keys: nextKeys }
  const legacy = { ...ctx, keys: m.legacy }
  return { next, legacy, writes: m.writes === 'new' ? next : legacy, sharedBases: nextKeys.base(0) === m.legacy.base(0) }
}

/**
 * The contexts whose dead letters an operator acts on: while migrating from
 * format 1 the old layout has dead sets of its own (from format 2 they are
 * the same keys), replayed into its own job queues, which its pipeline runs.
 */
export function deadLetterLayouts (ctx: StoreContext): StoreContext[] {
  const l = layouts(ctx)
  return l && !l.sharedBases ? [l.next, l.legacy] : [ctx]
}

const isNotFound = (err: unknown) => (err as { code?: unknown }).code === 'CHECKOUT_NOT_FOUND'

/** Reads on the primary: the layout a write goes to must not be decided on a stale replica. */
function primary (ctx: StoreContext): StoreContext {
  const { reader: _r, readCache: _c, ...rest } = ctx
  return rest
}

async function holdIn<V> (ctx: StoreContext, id: string, get: OneLayout<[string], V>): Promise<V | undefined> {
  try {
    return await get(primary(ctx), id)
  } catch (err) {
    if (isNotFound(err)) return undefined
    throw err
  }
}

const hasRecord = async (ctx: StoreContext, id: string, idem: MinimalIdempotency) =>
  await ctx.redis.exists(idempotencyRecordKey(ctx.keys, id, idem)) === 1

/**
 * The layout whose script must answer a request whose Idempotency-Key was
 * already used (its script replays the first reply), or undefined.
 */
async function replayOwner (l: Layouts, id: string, idem: MinimalIdempotency | undefined): Promise<StoreContext | undefined> {
  if (!idem) return undefined
  // Format 2 to 3: one record for both scripts, so either replays it.
  if (l.sharedBases) return await hasRecord(l.next, id, idem) ? l.writes : undefined
  if (await hasRecord(l.legacy, id, idem)) return l.legacy
  return await hasRecord(l.next, id, idem) ? l.next : undefined
}

/** A hold the old layout's scripts must decide on: pending there, or past its deadline with no script yet recording it. */
const livePending = (v: { status: string, endedAt?: number } | undefined) =>
  v !== undefined && (v.status === 'pending' || (v.status === 'expired' && v.endedAt === undefined))

/**
 * Create: a live pending hold of the id in the other layout refuses it as a
 * pending hold in the same layout would; so does one past its deadline that
 * is not expired yet. Once every process writes the new
 * layout (the phase wait of `migrate start`) no hold appears in the other
 * one any more, so checking it first and creating after cannot miss one.
 */
export async function createMigrating<H extends { id: string }, I extends MinimalIdempotency, V extends { status: string, remainingMs: number }, R> (
  l: Layouts, hold: H, idem: I | undefined, create: OneLayout<[H, I | undefined], R>, get: OneLayout<[string], V>
): Promise<R> {
  const owner = await replayOwner(l, hold.id, idem)
  if (owner) return await create(owner, hold, idem)
  const other = await holdIn(l.writes === l.next ? l.legacy : l.next, hold.id, get)
  // A hold past its deadline that no script has expired yet counts as held (no time left): in one
  // layout the create script expires it and queues its handler in the same step, but no script
  // spans two layouts, and a create over it would drop its expiry. A worker expires it within
  // moments, and the create then goes through.
  if (livePending(other)) {
    const ttlMs = Math.max(0, other?.remainingMs ?? 0)
    throw withDetails(new Errors.CHECKOUT_EXISTS(hold.id, ttlMs), { ttlMs })
  }
  return await create(l.writes, hold, idem)
}

/** Read: format 3 first (a hold there is the newer one: it was created while the old one was not pending), then the old layout. */
export async function getMigrating<V> (l: Layouts, id: string, get: OneLayout<[string], V>): Promise<V> {
  try {
    return await get(l.next, id)
  } catch (err) {
    if (!isNotFound(err)) throw err
    return await get(l.legacy, id)
  }
}

/**
 * Complete, cancel, extend: on the layout that holds the order. Without an
 * Idempotency-Key, format 3 is tried and the old layout when format 3 has
 * no pending hold of the id (from 2 to 3 the old order hash is under the
 * same key, so format 3 may answer "not pending: pending" for it). With a
 * key, the layout is found first: a script records its reply, a refusal
 * too, and a retry must meet the reply of the layout that acted.
 */
export async function changeMigrating<A extends unknown[], R, V extends { status: string, endedAt?: number }> (
  l: Layouts, id: string, idem: MinimalIdempotency | undefined, args: A,
  change: OneLayout<A, R>, get: OneLayout<[string], V>
): Promise<R> {
  if (!idem) {
    try {
      return await change(l.next, ...args)
    } catch (err) {
      const code = (err as { code?: unknown }).code
      const oldPending = code === 'CHECKOUT_NOT_PENDING' && (err as { details?: { status?: unknown } }).details?.status === 'pending'
      if (!isNotFound(err) && !oldPending) throw err
      return await change(l.legacy, ...args)
    }
  }
  const owner = await replayOwner(l, id, idem) ?? await holder(l, id, get)
  return await change(owner, ...args)
}

async function holder<V extends { status: string, endedAt?: number }> (l: Layouts, id: string, get: OneLayout<[string], V>): Promise<StoreContext> {
  const old = await holdIn(l.legacy, id, get)
  if (livePending(old)) return l.legacy
  if (await holdIn(l.next, id, get) !== undefined) return l.next
  return old !== undefined ? l.legacy : l.next
}
