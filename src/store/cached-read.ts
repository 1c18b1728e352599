import { Errors } from '../errors.js'
import { getCheckout, hashFields, toView, type CheckoutView } from './checkout-store.js'
import { run, type StoreContext } from './context.js'
import { answerNow, cachedAnswer, type RenderCheckout } from './read-cache-answer.js'

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
 * than Redis keeps it. Without the cache: getCheckout.
 */
export async function readCheckout (ctx: StoreContext, id: string, render: RenderCheckout): Promise<CachedRead> {
  const rc = ctx.readCache
  // Key format 3 keeps a pending hold in a bucket shared with others, not in a key of its own to track: no cache.
  if (!rc || ctx.keys.format === 3) return { view: await getCheckout(ctx, id) }
  if (ctx.refusal) throw ctx.refusal
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
  const now = Number(reply[0])
  if (reply.length < 3) {
    rc.cache.end(ticket, undefined)
    throw new Errors.CHECKOUT_NOT_FOUND(id)
  }
  const fields = hashFields(reply)
  const view = toView(id, fields, now)
  // Redis drops an ended hold at its end plus the retention (the PEXPIRE of end-6.lua and
  // expire-order.lua); the entry must not outlive it, whatever happens to invalidations.
  const lifeMs = fields.t === undefined ? undefined : Number(fields.t) + ctx.retentionMs - now
  rc.cache.end(ticket, cachedAnswer(view, render, now - Date.now()), lifeMs)
  return { view, cache: 'miss' }
}
