import t from 'tap'
import { buildApp } from '../src/app.js'
import { MAX_LIVENESS_MS } from '../src/store/read-cache.js'
import { json, testConfig } from './helpers/app.js'
import { startRedis } from './helpers/redis.js'
import { startTcpProxy } from './helpers/tcp-proxy.js'
import { until } from './helpers/worker.js'

const redis = await startRedis()
t.teardown(redis.stop)

t.test('a cut link to Redis (sockets left open): no hit once the invalidation connection has not answered for a second', async (t) => {
  // A long max age: only the PINGs on the invalidation connection can stop the hits.
  const boundMs = MAX_LIVENESS_MS
  const prefix = testConfig(redis.url).KEY_PREFIX
  const a = await buildApp({ config: { ...testConfig(redis.url), KEY_PREFIX: prefix } })
  const proxy = await startTcpProxy(redis.port)
  const b = await buildApp({
    config: {
      ...testConfig(proxy.url, { READ_CACHE: 'true', READ_CACHE_MAX_AGE_MS: '60000', REDIS_COMMAND_TIMEOUT_MS: '300' }),
      KEY_PREFIX: prefix
    }
  })
  await b.ready()
  t.teardown(async () => { await a.close(); await b.close(); await proxy.close() })
  t.ok(await until(() => b.store.readCache?.cache.tracking === true, 5000), 'tracking on')
  const get = async () => await b.inject({ method: 'GET', url: '/checkout/cut' })

  t.equal((await a.inject({ method: 'POST', url: '/checkout', ...json({ id: 'cut', ttlMs: 60_000 }) })).statusCode, 201)
  t.equal((await get()).headers['x-cache'], 'miss')
  t.ok(await until(async () => (await get()).headers['x-cache'] === 'hit', 3000), 'B has the hold cached')

  proxy.cut()
  const cutAt = performance.now()
  // Redis sends B the invalidation, which never arrives.
  t.equal((await a.inject({ method: 'POST', url: '/checkout/cut/complete' })).statusCode, 200)
  let reads = 0
  const stale: string[] = []
  while (performance.now() - cutAt < boundMs + 1500 && reads < 200) {
    const startedAt = performance.now()
    const res = await get()
    reads++
    // After the bound: Redis unreachable (503) is right, a cached answer is not.
    if (startedAt - cutAt > boundMs && (res.headers['x-cache'] === 'hit' || res.statusCode === 200)) {
      stale.push(`${(startedAt - cutAt).toFixed(0)} ms after the cut: ${res.statusCode} ${String(res.headers['x-cache'])} ${res.body.slice(0, 60)}`)
    }
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  t.same(stale, [], `no cached answer later than ${boundMs} ms after the cut (${reads} reads)`)

  proxy.heal()
  // The held bytes arrive in order: the invalidation, then the answers to the pings; B caches again.
  t.ok(await until(async () => {
    const res = await get()
    return res.statusCode === 200 && res.json().status === 'completed' && res.headers['x-cache'] === 'hit'
  }, 5000), 'after the link heals, B serves the completed hold, from its cache again')
})
