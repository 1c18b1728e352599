import t from 'tap'
import { createKeyspace } from '../src/keys.js'
import { closeRedis, createRedis } from '../src/redis/connection.js'
import { createHold, endHold } from '../src/store/checkout-store.js'
import { createStoreContext } from '../src/store/context.js'
import { invalidationTargets, packedHoldKey } from '../src/store/read-cache-packed.js'
import { startRedis } from './helpers/redis.js'

/**
 * The read cache names the key a format 3 hold lives in (packedHoldKey) the
 * way the scripts place it; if they ever disagree, a write to the hold's
 * bucket would not drop its cached answer. Tiny buckets, so they split often.
 */
const redis = await startRedis()
t.teardown(redis.stop)

t.test('packedHoldKey names the bucket (or long-id key) where the scripts keep each pending hold', async (t) => {
  const packing = { hashEntries: 8, hashValue: 64, zsetEntries: 8, zsetValue: 64, fingerprintChars: 4 }
  const keys = createKeyspace(`rcp${process.pid}:`, 2, 3, undefined, packing)
  const store = createStoreContext(createRedis({ url: redis.url, role: 'worker' }), keys, 60_000)
  t.teardown(() => closeRedis(store.redis))
  const ids = Array.from({ length: 150 }, (_v, i) => i % 25 === 0 ? `long-${'x'.repeat(60)}-${i}` : `hold-${i}`)
  for (const id of ids) await createHold(store, { id, ttlMs: 600_000 })
  // Some leave, so chains shrink and keys are renamed too.
  for (const id of ids.filter((_id, i) => i % 7 === 0)) await endHold(store, id, 'cancelled')
  let checked = 0
  for (const id of ids.filter((_id, i) => i % 7 !== 0)) {
    const k = keys.order(id)
    const [l, s] = await store.redis.hmget(k.table, 'l', 's')
    const family = packedHoldKey(k.base, id, packing, { l: Number(l ?? 0), s: Number(s ?? 0) })
    if (family.includes(':pk:')) {
      t.equal(await store.redis.exists(family), 1, `${id}: its long-id key`)
    } else {
      const members = await store.redis.keys(`${family}*`)
      const here = members.filter((key) => invalidationTargets(key).includes(family))
      const values = (await Promise.all(here.map(async (key) => await store.redis.hvals(key)))).flat()
      t.ok(values.some((v) => v.includes(id)), `${id}: in ${family}`)
    }
    checked++
  }
  t.ok(Number((await store.redis.hget(keys.shard(0).table, 'l')) ?? 0) >= 3, 'the buckets split several times')
  t.equal(checked, 128)
  const all = await store.redis.keys(`rcp${process.pid}:*`)
  if (all.length > 0) await store.redis.del(...all)
})

t.test('an invalidated chain key reaches its bucket family and its shard', async (t) => {
  t.same(invalidationTargets('p:{3.1}:b:12.2'), ['p:{3.1}:b:12.2', 'p:{3.1}:b:12', 'p:{3.1}:'])
  t.same(invalidationTargets('p:{3.1}:b:12'), ['p:{3.1}:b:12', 'p:{3.1}:'])
  t.same(invalidationTargets('p:{3.1}:order:b:1.2'), ['p:{3.1}:order:b:1.2', 'p:{3.1}:'], 'an order id that looks like a chain key is not one')
})
