// An expiry handler module: EXPIRY_HANDLERS=log,./examples/handler/release-stock.mjs
//
// When a hold expires, puts the items of its cart back into stock. The stock
// levels are a Redis hash (INVENTORY_REDIS_URL, else the worker's REDIS_URL):
// `shop:{stock}:levels`, one field per SKU. The payload it expects:
//   { "cart": [{ "sku": "sku-1", "qty": 2 }, "sku-2"] }   (a bare string is one item)
//
// Idempotent on event.idempotencyKey: a worker that crashes after releasing
// and before reporting, or a retry after a later handler failed, runs this
// again with the same key. The release and a marker of that key are written
// in one atomic script, so stock is released once per expiry whatever happens.
import { Redis } from 'ioredis'

const PREFIX = 'shop:{stock}:' // one hash tag: the script's two keys share a Cluster slot
// Longer than retries, backoff and DEAD_LETTER_RETENTION_MS (30 days), so a replayed dead letter is still recognised.
const MARKER_TTL_SECONDS = 35 * 24 * 3600

// KEYS[1] the marker of this expiry, KEYS[2] the stock levels; ARGV[1] the marker's TTL, then sku, qty pairs.
// Returns 1 when it released the stock, 0 when this expiry had already released it.
const RELEASE = `
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then return 0 end
for i = 2, #ARGV, 2 do redis.call('HINCRBY', KEYS[2], ARGV[i], ARGV[i + 1]) end
return 1`

let redis
function inventory () {
  // One connection per worker process, opened on the first expiry; the worker's exit closes it.
  redis ??= new Redis(process.env.INVENTORY_REDIS_URL ?? process.env.REDIS_URL ?? 'redis://127.0.0.1:6379')
  return redis
}

/** The cart as [sku, qty] pairs; a malformed cart fails the run (and ends in the dead-letter set). */
function cartLines (payload) {
  const cart = payload?.cart ?? []
  if (!Array.isArray(cart)) throw new TypeError('payload.cart must be an array')
  return cart.map((item) => {
    const { sku, qty } = typeof item === 'string' ? { sku: item, qty: 1 } : item ?? {}
    if (typeof sku !== 'string' || sku === '' || !Number.isInteger(qty) || qty < 1) {
      throw new TypeError('each cart item is a SKU string or { sku, qty } with a positive integer qty')
    }
    return [sku, qty]
  })
}

export default async function releaseStock (event, ctx) {
  const lines = cartLines(event.payload)
  if (lines.length === 0) return
  // A Redis command cannot be called back, so ctx.signal is not passed: the run waits for the answer.
  const released = await inventory().eval(
    RELEASE, 2, `${PREFIX}released:${event.idempotencyKey}`, `${PREFIX}levels`, MARKER_TTL_SECONDS, ...lines.flat()
  )
  ctx.log.info({ items: lines.length, idempotencyKey: event.idempotencyKey },
    released === 1 ? 'stock released' : 'stock already released for this expiry')
}
