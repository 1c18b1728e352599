import type { CheckoutView } from './checkout-store.js'
import type { CachedHold } from './read-cache.js'

/** The answer's JSON for a view, as the route serializes it (its response schema). */
export type RenderCheckout = (view: CheckoutView) => string

/** How a serialized answer with no time left writes it; the answer's first match (only `id` comes before, and ids hold no quote). */
const NO_TIME_LEFT = '"ttl":0,"ttlMs":0'
const PENDING = '"status":"pending"'

/**
 * The cache entry of a view read from Redis: its answer serialized once,
 * cut where the time left goes, so a hit only fills in two numbers.
 * Undefined when the serializer does not write the time left as expected
 * (nothing is cached then).
 */
export function cachedAnswer (view: CheckoutView, render: RenderCheckout, clockOffsetMs: number): CachedHold | undefined {
  if (view.status !== 'pending') return { head: render(view), tail: '', expiresAt: undefined, clockOffsetMs }
  const json = render({ ...view, remainingMs: 0 })
  const at = json.indexOf(NO_TIME_LEFT)
  if (at < 0 || !json.includes(PENDING) || !json.endsWith('}')) return undefined
  return { head: `${json.slice(0, at)}"ttl":`, tail: json.slice(at + NO_TIME_LEFT.length), expiresAt: view.expiresAt, clockOffsetMs }
}

/**
 * The answer now, at the Redis clock (local clock + the offset measured at
 * the read), as a miss would give it: the time left counts down, and past
 * the deadline the hold reads `"status":"expired","outcome":"pending"`
 * with no time left (toView's lapsed hold: `outcome` is its last field).
 */
export function answerNow (hold: CachedHold): string {
  if (hold.expiresAt === undefined) return hold.head
  const remainingMs = hold.expiresAt - (Date.now() + hold.clockOffsetMs)
  if (remainingMs > 0) return `${hold.head}${Math.ceil(remainingMs / 1000)},"ttlMs":${remainingMs}${hold.tail}`
  return `${hold.head.replace(PENDING, '"status":"expired"')}0,"ttlMs":0${hold.tail.slice(0, -1)},"outcome":"pending"}`
}
