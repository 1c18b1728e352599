import type { FastifyInstance } from 'fastify'
import t from 'tap'
import { buildApp } from '../src/app.js'
import { createReadCache } from '../src/store/read-cache.js'
import { json, testConfig } from './helpers/app.js'
import { startRedis } from './helpers/redis.js'
import { until } from './helpers/worker.js'

const redis = await startRedis()
t.teardown(redis.stop)

async function cachedApp (prefix: string, env: Record<string, string> = {}): Promise<FastifyInstance> {
  const config = testConfig(redis.url, { READ_CACHE: 'true', ...env })
  const app = await buildApp({ config: { ...config, KEY_PREFIX: prefix } })
  await app.ready()
  t.ok(await until(() => app.store.readCache?.cache.tracking === true, 5000), 'tracking on')
  return app
}

const metric = async (app: FastifyInstance, name: string) => {
  const text = (await app.inject({ method: 'GET', url: '/metrics' })).body
  return Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1])
}

t.test('a read whose key is invalidated while it is in flight is not cached', async (t) => {
  const cache = createReadCache(10)
  cache.setTracking(true)
  const hold = { fields: { s: 'pending' }, clockOffsetMs: 0 }
  const ticket = cache.begin('k')
  t.ok(ticket)
  cache.invalidate('k')
  cache.end(ticket!, hold)
  t.equal(cache.get('k'), undefined, 'invalidated in flight: not cached')
  const again = cache.begin('k')
  cache.end(again!, hold)
  t.same(cache.get('k'), hold, 'a read with no invalidation meanwhile is cached')
  const beforeFlush = cache.begin('j')
  cache.setTracking(false)
  cache.setTracking(true)
  cache.end(beforeFlush!, hold)
  t.equal(cache.get('j'), undefined, 'a read that started before tracking was lost is not cached')
  t.equal(cache.size, 0, 'losing tracking flushed everything')
})

t.test('LRU bound: the entries gauge never exceeds READ_CACHE_MAX_ENTRIES', async (t) => {
  const app = await cachedApp(`t${Date.now()}a:`, { READ_CACHE_MAX_ENTRIES: '5' })
  t.teardown(() => app.close())
  let most = 0
  for (let i = 0; i < 20; i++) {
    await app.inject({ method: 'POST', url: '/checkout', ...json({ id: `lru-${i}`, ttlMs: 60_000 }) })
    const miss = await app.inject({ method: 'GET', url: `/checkout/lru-${i}` })
    t.equal(miss.headers['x-cache'], 'miss')
    most = Math.max(most, await metric(app, 'checkout_read_cache_entries'))
  }
  t.equal(most, 5, 'filled up to the bound and never past it')
  t.equal((await app.inject({ method: 'GET', url: '/checkout/lru-19' })).headers['x-cache'], 'hit', 'the most recent is kept')
  t.equal((await app.inject({ method: 'GET', url: '/checkout/lru-0' })).headers['x-cache'], 'miss', 'the oldest was evicted')
  const notFound = await app.inject({ method: 'GET', url: '/checkout/never-held' })
  t.equal(notFound.statusCode, 404)
  t.equal(notFound.headers['x-cache'], 'miss', '404s say miss')
  t.equal((await app.inject({ method: 'GET', url: '/checkout/never-held' })).headers['x-cache'], 'miss', '404s are not cached')
  t.ok(await metric(app, 'checkout_read_cache_hits_total') >= 1)
  t.ok(await metric(app, 'checkout_read_cache_misses_total') >= 22)
})

t.test('a hit recomputes the time left and a lapsed deadline from the stored deadline', async (t) => {
  const app = await cachedApp(`t${Date.now()}b:`)
  t.teardown(() => app.close())
  await app.inject({ method: 'POST', url: '/checkout', ...json({ id: 'lapse', ttlMs: 1000 }) })
  const first = await app.inject({ method: 'GET', url: '/checkout/lapse' })
  const second = await app.inject({ method: 'GET', url: '/checkout/lapse' })
  t.equal(second.headers['x-cache'], 'hit')
  t.ok(second.json().ttlMs <= first.json().ttlMs, 'time left counts down on hits')
  await new Promise((resolve) => setTimeout(resolve, 1100))
  const lapsed = await app.inject({ method: 'GET', url: '/checkout/lapse' })
  // No worker runs here: nothing changes the hash, so this is a hit computed past the deadline.
  t.equal(lapsed.headers['x-cache'], 'hit')
  t.match(lapsed.json(), { status: 'expired', outcome: 'pending', ttlMs: 0, ttl: 0 })
})

t.test('random writes through A and reads through B never show a state older than the last acknowledged write', async (t) => {
  const prefix = `t${Date.now()}c:`
  const a = await cachedApp(prefix)
  const b = await cachedApp(prefix)
  t.teardown(async () => { await a.close(); await b.close() })
  const ids = ['p-0', 'p-1', 'p-2']
  // A version only grows: a new hold has a higher generation, a cancel follows its hold, each extend asks for more time.
  const rank = (v: { generation: number, status: string, expiresAt: string }) =>
    [v.generation, v.status === 'pending' ? 0 : 1, Date.parse(v.expiresAt)] as const
  const older = (x: readonly number[], y: readonly number[]) => x[0]! < y[0]! || (x[0] === y[0] && (x[1]! < y[1]! || (x[1] === y[1] && x[2]! < y[2]!)))
  const acked = new Map<string, readonly number[]>()
  let ttl = 60_000
  let seed = 7
  const random = () => { seed = (seed * 1103515245 + 12345) % 2 ** 31; return seed / 2 ** 31 }
  for (const id of ids) {
    await a.inject({ method: 'POST', url: '/checkout', ...json({ id, ttlMs: ttl }) })
    const got = await a.inject({ method: 'GET', url: `/checkout/${id}` })
    acked.set(id, rank(got.json()))
  }
  let stale = 0
  let hits = 0
  const write = async (id: string) => {
    const r = random()
    ttl += 10
    if (r < 0.7) {
      const res = await a.inject({ method: 'PATCH', url: `/checkout/${id}`, ...json({ ttlMs: ttl }) })
      if (res.statusCode === 200) acked.set(id, rank(res.json()))
      return
    }
    await a.inject({ method: 'DELETE', url: `/checkout/${id}` })
    const res = await a.inject({ method: 'POST', url: '/checkout', ...json({ id, ttlMs: ttl }) })
    acked.set(id, rank(res.json()))
  }
  const read = async (id: string) => {
    const floor = acked.get(id)!
    // Redis sends the invalidation and the write's reply on two sockets in the same
    // instant; in one process the reply can be read first (docs/read-cache.md).
    await b.store.readCache!.settled()
    const res = await b.inject({ method: 'GET', url: `/checkout/${id}` })
    if (res.headers['x-cache'] === 'hit') hits++
    if (older(rank(res.json()), floor)) stale++
  }
  for (let i = 0; i < 300; i++) {
    const id = ids[Math.floor(random() * ids.length)]!
    // Reads run alongside a write of another id and after writes of this one.
    const other = ids[(ids.indexOf(id) + 1) % ids.length]!
    if (random() < 0.4) await write(id)
    await Promise.all([read(id), read(id), random() < 0.5 ? write(other) : Promise.resolve()])
  }
  t.equal(stale, 0, 'no read older than the last write acknowledged before it started')
  t.ok(hits > 50, `the cache served reads (${hits} hits)`)
})

t.test('refused at start with replica reads, in one line', async (t) => {
  const config = testConfig(redis.url, { READ_CACHE: 'true', REDIS_READ_FROM: 'replica', REDIS_REPLICA_URL: redis.url })
  await t.rejects(buildApp({ config }), { name: 'ConfigError', message: /READ_CACHE=true and REDIS_READ_FROM=replica cannot be combined/ })
})
