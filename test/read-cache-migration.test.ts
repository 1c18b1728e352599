import t from 'tap'
import { buildApp } from '../src/app.js'
import { startMigration } from '../src/store/migration.js'
import { json, testConfig } from './helpers/app.js'
import { startRedis } from './helpers/redis.js'
import { until } from './helpers/worker.js'

/**
 * READ_CACHE while a prefix migrates to format 3 (docs/read-cache.md): a
 * hold may sit in either layout and the cache's tracking covers one, so
 * reads go to Redis and find holds of both layouts, never a stale one.
 */
const redis = await startRedis()
t.teardown(redis.stop)

t.test('while migrating from format 1, a cached API reads holds of both layouts and sees changes made elsewhere', async (t) => {
  const config = testConfig(redis.url, { KEY_FORMAT: '1', KEY_SHARDS: '2', READ_CACHE: 'true' })
  const cached = await buildApp({ config })
  await cached.ready()
  t.teardown(() => cached.close())
  const other = await buildApp({ config: { ...config, READ_CACHE: false } })
  await other.ready()
  t.teardown(() => other.close())
  t.ok(await until(() => cached.store.readCache?.cache.tracking === true, 5000), 'tracking on')

  t.equal((await cached.inject({ method: 'POST', url: '/checkout', ...json({ id: 'old', ttlMs: 60_000 }) })).statusCode, 201)
  await cached.inject('/checkout/old')
  t.equal((await cached.inject('/checkout/old')).headers['x-cache'], 'hit', 'format 1: cached before the switch')

  const silent = { warn: () => {} }
  await startMigration(redis.client(), config.KEY_PREFIX, 2, silent, () => {})
  t.ok(await until(() => cached.store.keys.migration?.writes === 'new' && other.store.keys.migration?.writes === 'new', 5000),
    'both APIs follow the switch')

  const old = await cached.inject('/checkout/old')
  t.equal(old.statusCode, 200, 'a hold of the old layout is found')
  t.equal(old.json().status, 'pending')
  t.equal((await cached.inject({ method: 'POST', url: '/checkout', ...json({ id: 'new', ttlMs: 60_000 }) })).statusCode, 201)
  t.equal((await cached.inject('/checkout/new')).json().status, 'pending', 'a hold of format 3 is found')

  t.equal((await other.inject({ method: 'POST', url: '/checkout/old/complete' })).statusCode, 200, 'completed through another API')
  t.equal((await other.inject({ method: 'DELETE', url: '/checkout/new' })).statusCode, 200, 'cancelled through another API')
  for (let i = 0; i < 2; i++) {
    t.equal((await cached.inject('/checkout/old')).json().status, 'completed', `old hold: the change is seen (read ${i + 1})`)
    t.equal((await cached.inject('/checkout/new')).json().status, 'cancelled', `new hold: the change is seen (read ${i + 1})`)
  }
})
