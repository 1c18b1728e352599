import { Errors } from '../errors.js'
import { getCheckout, hashFields, toView, type CheckoutView } from './checkout-store.js'
import { run, type ReadCacheSettings, type StoreContext } from './context.js'
import { direct } from './direct.js'
import { answerNow, cachedAnswer, type RenderCheckout } from './read-cache-answer.js'
import { packedHoldKey, readPackedTracked } from './read-cache-packed.js'
import type { Ticket } from './read-cache.js'

/** A hold read from Redis (`view`), or its answer from the read cache (`json`). */
export type CachedRead =
  | { view: CheckoutView, json?: undefined, /** Absent when the cache is off. */ cache?: 'miss' }
  | { view?: undefined, json: string, cache: 'hit' }

/**
 * GET /checkout/:id with READ_CACHE: a hit is a map lookup by id and the
 * cached answer with the time left filled in at the Redis clock (local
 * clock + the offset measured when the entry was read), so the time left
 * and a lapsed deadline come out as a miss would give them. A miss runs
 * the same get script on the tracked connection, which makes Redis track
 * the key for this process, and caches the answer `render` makes of it.
 * Holds not found are not cached, and an ended hold is cached no longer
 * than Redis keeps it. Without the cache: getCheckout. Key format 3: see readPacked.
 */
export async function readCheckout (ctx: StoreContext, id: string, render: RenderCheckout): Promise<CachedRead> {
  const rc = ctx.readCache
  if (!rc) return { view: await getCheckout(ctx, id) }
  if (ctx.refusal) throw ctx.refusal
  // Tracking not on for this layout yet (just opened, or another key format): uncached.
  // While the prefix migrates to format 3, a hold may be in either layout and the
  // tracking covers one: reads go to Redis (getCheckout asks both) until `migrate finish`.
  if (!rc.follow(ctx.keys) || ctx.keys.migration) return { view: await getCheckout(ctx, id), cache: 'miss' }
  if (ctx.keys.format === 3) return await readPacked(ctx, rc, id, render)
  const hit = rc.cache.get(id)
  if (hit) return { json: answerNow(hit), cache: 'hit' }
  const key = ctx.keys.order(id).order
  const ticket = rc.cache.begin(id, key)
  // Tracking down (a tracking connection reconnecting): an uncached read on the API's own connection.
  if (!ticket) return { view: await getCheckout(ctx, id), cache: 'miss' }
  let reply: unknown[]
  try {
    reply = await run(ctx, 'get', [key], [], rc.reader)
  } catch (err) {
    rc.cache.end(ticket, undefined)
    throw err
  }
  return endMiss(ctx, rc, ticket, id, reply, render)
}

/**
 * Caches what a miss read (the get script's `{ now, field, value, ... }`)
 * under `keyOf(fields)` (default: the key its ticket was begun with) and
 * answers it; a hold not found is not cached.
 */
function endMiss (
  ctx: StoreContext, rc: ReadCacheSettings, ticket: Ticket, id: string, reply: unknown[], render: RenderCheckout,
  keyOf?: (fields: Record<string, string>) => string
): CachedRead {
  const now = Number(reply[0])
  if (reply.length < 3) {
    rc.cache.end(ticket, undefined)
    throw new Errors.CHECKOUT_NOT_FOUND(id)
  }
  const fields = hashFields(reply)
  const view = toView(id, fields, now)
  // Redis drops an ended hold at its end plus the retention (the PEXPIRE or PX of its end);
  // the entry must not outlive it, whatever happens to invalidations.
  const lifeMs = fields.t === undefined ? undefined : Number(fields.t) + ctx.retentionMs - now
  rc.cache.end(ticket, cachedAnswer(view, render, now - Date.now()), lifeMs, keyOf?.(fields))
  return { view, cache: 'miss' }
}

/**
 * Key format 3: the get script and the bucket table in one MULTI on the
 * reader, whose tracking is told of every write to the shards' buckets
 * (BCAST). The entry is dropped by a write to the bucket the script looked
 * in (or the hold's long-id key) while pending, to its order hash once
 * ended; a write anywhere in the shard while the read is in flight keeps it
 * out of the cache.
 */
async function readPacked (ctx: StoreContext, rc: ReadCacheSettings, id: string, render: RenderCheckout): Promise<CachedRead> {
  const hit = rc.cache.get(id)
  if (hit) return { json: answerNow(hit), cache: 'hit' }
  const k = ctx.keys.order(id)
  const ticket = rc.cache.begin(id, k.base)
  if (!ticket) return { view: await getCheckout(ctx, id), cache: 'miss' }
  let read: Awaited<ReturnType<typeof readPackedTracked>>
  try {
    read = await direct(ctx, async () => await readPackedTracked(rc.reader, k, id, ctx.keys.packing))
  } catch (err) {
    rc.cache.end(ticket, undefined)
    throw err
  }
  const { reply, table } = read
  // Only a pending hold is read from a bucket: an ended one is its record under order:<id>.
  return endMiss(ctx, rc, ticket, id, reply, render,
    (fields) => fields.s === 'pending' ? packedHoldKey(k.base, id, ctx.keys.packing, table) : k.order)
}
