import type { FastifyInstance } from 'fastify'
import t from 'tap'
import { buildApp } from '../src/app.js'
import { loadConfig } from '../src/config.js'
import { createReadCache } from '../src/store/read-cache.js'
import { json, testConfig } from './helpers/app.js'
import { startRedis } from './helpers/redis.js'
import { startTcpProxy } from './helpers/tcp-proxy.js'
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

/**
 * Waits until the invalidations of the writes made so far have reached the
 * cache. On key format 3 the cache hears of every write to a shard's
 * buckets, and a read in flight when one arrives is not cached, even for a
 * write made before the read: a test that expects a read right after a
 * write to be cached waits for them first.
 */
const settled = async (app: FastifyInstance) => { await app.store.readCache!.settled() }

const sleep = async (ms: number) => await new Promise((resolve) => setTimeout(resolve, ms))

const metric = async (app: FastifyInstance, name: string) => {
  const text = (await app.inject({ method: 'GET', url: '/metrics' })).body
  return Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1])
}

const limits = { maxEntries: 10, maxBytes: 1_000_000, maxAgeMs: 60_000 }

t.test('a read whose key is invalidated while it is in flight is not cached', async (t) => {
  const cache = createReadCache(limits)
  cache.setTracking(true)
  cache.confirm(performance.now())
  const hold = { head: '{"id":"k","status":"completed"}', tail: '', expiresAt: undefined, clockOffsetMs: 0 }
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
  cache.confirm(performance.now())
  cache.end(beforeFlush!, hold)
  t.equal(cache.get('j'), undefined, 'a read that started before tracking was lost is not cached')
  t.equal(cache.size, 0, 'losing tracking flushed everything')
})

t.test('an entry is served for at most its max age, its hold\'s life, and while the invalidation connection answers', async (t) => {
  const hold = { head: '{"id":"k","status":"completed"}', tail: '', expiresAt: undefined, clockOffsetMs: 0 }
  const cache = createReadCache({ ...limits, maxAgeMs: 300 })
  cache.setTracking(true)
  const fill = (key: string, lifeMs?: number) => cache.end(cache.begin(key)!, hold, lifeMs)
  fill('k')
  t.equal(cache.get('k'), undefined, 'no hit before a PING was answered since tracking went on')
  cache.confirm(performance.now())
  t.same(cache.get('k'), hold, 'a hit once confirmed')
  fill('short', 100)
  fill('none', 0)
  t.equal(cache.get('none'), undefined, 'a hold Redis has already dropped is not cached')
  await sleep(150)
  t.equal(cache.get('short'), undefined, 'gone when its hold is gone from Redis')
  cache.confirm(performance.now())
  await sleep(200)
  t.equal(cache.get('k'), undefined, 'gone past the max age, although confirmed recently')
  cache.confirm(performance.now())
  fill('k')
  t.same(cache.get('k'), hold)
  await sleep(350)
  t.equal(cache.get('k'), undefined, 'no hit once the last answered PING is older than the liveness bound (the max age here)')
  cache.confirm(performance.now())
  t.equal(cache.get('k'), undefined, 'and the entry itself has aged out meanwhile')
})

t.test('LRU bound: the entries gauge never exceeds READ_CACHE_MAX_ENTRIES', async (t) => {
  const app = await cachedApp(`t${Date.now()}a:`, { READ_CACHE_MAX_ENTRIES: '5' })
  t.teardown(() => app.close())
  let most = 0
  for (let i = 0; i < 20; i++) {
    await app.inject({ method: 'POST', url: '/checkout', ...json({ id: `lru-${i}`, ttlMs: 60_000 }) })
    await settled(app)
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
  // A max age longer than the hold, so the entry outlives the deadline.
  const app = await cachedApp(`t${Date.now()}b:`, { READ_CACHE_MAX_AGE_MS: '5000' })
  t.teardown(() => app.close())
  await app.inject({ method: 'POST', url: '/checkout', ...json({ id: 'lapse', ttlMs: 1000 }) })
  await settled(app)
  const first = await app.inject({ method: 'GET', url: '/checkout/lapse' })
  const second = await app.inject({ method: 'GET', url: '/checkout/lapse' })
  t.equal(second.headers['x-cache'], 'hit')
  t.ok(second.json().ttlMs <= first.json().ttlMs, 'time left counts down on hits')
  await new Promise((resolve) => setTimeout(resolve, 1100))
  const lapsed = await app.inject({ method: 'GET', url: '/checkout/lapse' })
  // No worker runs here: nothing changes the hash, so this is a hit computed past the deadline.
  t.equal(lapsed.headers['x-cache'], 'hit')
  t.match(lapsed.json(), { status: 'expired', outcome: 'pending', ttlMs: 0, ttl: 0 })
  // The same bytes and headers as an uncached read of the same hold.
  const plain = await buildApp({ config: { ...testConfig(redis.url), KEY_PREFIX: app.store.keys.prefix } })
  t.teardown(() => plain.close())
  const uncached = await plain.inject({ method: 'GET', url: '/checkout/lapse' })
  t.equal(lapsed.body, uncached.body, 'a lapsed hit answers byte for byte what Redis gives')
  t.equal(lapsed.headers['content-type'], uncached.headers['content-type'])
})

t.test('a hit answers byte for byte what a miss answers, the time left apart', async (t) => {
  const app = await cachedApp(`t${Date.now()}h:`)
  t.teardown(() => app.close())
  const payload = { cart: ['sku-1', 'é"\\'], n: 1.5, nested: { ttl: 0, ttlMs: 0, status: 'pending' } }
  await app.inject({ method: 'POST', url: '/checkout', ...json({ id: 'same', ttlMs: 60_000, payload }) })
  await app.inject({ method: 'POST', url: '/checkout', ...json({ id: 'done', ttlMs: 60_000, payload }) })
  await app.inject({ method: 'POST', url: '/checkout/done/complete' })
  await settled(app)
  for (const id of ['same', 'done']) {
    const miss = await app.inject({ method: 'GET', url: `/checkout/${id}` })
    const hit = await app.inject({ method: 'GET', url: `/checkout/${id}` })
    t.equal(miss.headers['x-cache'], 'miss')
    t.equal(hit.headers['x-cache'], 'hit')
    const withoutTime = (body: string) => body.replace(/"ttl":\d+,"ttlMs":\d+/, '"ttl":T,"ttlMs":T')
    t.equal(withoutTime(hit.body), withoutTime(miss.body), `${id}: the same answer`)
    t.equal(hit.headers['content-type'], miss.headers['content-type'])
    const [m, h] = [miss.json(), hit.json()]
    t.ok(h.ttlMs <= m.ttlMs && h.ttlMs > (id === 'same' ? 59_000 : -1), `${id}: time left counts down (${m.ttlMs} then ${h.ttlMs})`)
    t.equal(h.ttl, Math.ceil(h.ttlMs / 1000))
  }
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

/** Orders the states of one id: a version only grows (a new hold has a higher generation, a cancel follows its hold, each extend asks for more time). */
type Rank = readonly [number, number, number]
const rank = (v: { generation: number, status: string, expiresAt: string }): Rank =>
  [v.generation, v.status === 'pending' ? 0 : 1, Date.parse(v.expiresAt)]
const older = (x: Rank, y: Rank) => x[0] < y[0] || (x[0] === y[0] && (x[1] < y[1] || (x[1] === y[1] && x[2] < y[2])))
t.test('reads through B issued while writes through A are in flight are never staler than READ_CACHE_MAX_AGE_MS', async (t) => {
  const prefix = `t${Date.now()}d:`
  const maxAgeMs = 200
  const a = await buildApp({ config: { ...testConfig(redis.url), KEY_PREFIX: prefix } })
  // B reaches Redis through a proxy that delays every chunk: its invalidations arrive late.
  const proxy = await startTcpProxy(redis.port)
  const b = await cachedApp(prefix, { REDIS_URL: proxy.url, READ_CACHE_MAX_AGE_MS: String(maxAgeMs) })
  t.teardown(async () => { await a.close(); await b.close(); await proxy.close() })
  const ids = ['f-0', 'f-1', 'f-2']
  // Every state A acknowledged, with when its reply arrived (monotonic ms).
  const acked = new Map<string, Array<{ rank: Rank, at: number }>>()
  const ack = (id: string, state: Rank) => acked.get(id)!.push({ rank: state, at: performance.now() })
  let ttl = 60_000
  for (const id of ids) {
    acked.set(id, [])
    ack(id, rank((await a.inject({ method: 'POST', url: '/checkout', ...json({ id, ttlMs: ttl }) })).json()))
  }
  const write = async (id: string, i: number) => {
    ttl += 10
    if (i % 3 !== 2) {
      const res = await a.inject({ method: 'PATCH', url: `/checkout/${id}`, ...json({ ttlMs: ttl }) })
      if (res.statusCode === 200) ack(id, rank(res.json()))
      return
    }
    const [generation, , expiresAt] = acked.get(id)!.at(-1)!.rank
    if ((await a.inject({ method: 'DELETE', url: `/checkout/${id}` })).statusCode === 200) ack(id, [generation, 1, expiresAt])
    ack(id, rank((await a.inject({ method: 'POST', url: '/checkout', ...json({ id, ttlMs: ttl }) })).json()))
  }
  const seen = { reads: 0, hits: 0, stale: 0, worstMs: 0 }
  const read = async (id: string) => {
    const startedAt = performance.now()
    const res = await b.inject({ method: 'GET', url: `/checkout/${id}` })
    seen.reads++
    if (res.headers['x-cache'] === 'hit') seen.hits++
    const got = rank(res.json())
    // The first acknowledged state newer than the answer: the answer is stale by the time since it was acknowledged.
    const newer = acked.get(id)!.find((s) => older(got, s.rank))
    if (newer === undefined || newer.at > startedAt) return
    seen.stale++
    seen.worstMs = Math.max(seen.worstMs, startedAt - newer.at)
  }
  // Reads start while the write is in flight and at growing delays after it.
  const round = async (i: number) => {
    const id = ids[i % ids.length]!
    await Promise.all([write(id, i), ...[0, 2, 10, 40, 120, 250].map(async (d) => { await sleep(d); await read(id) })])
  }
  const phase = async (delayMs: number, rounds: number) => {
    proxy.delay(delayMs)
    Object.assign(seen, { reads: 0, hits: 0, stale: 0, worstMs: 0 })
    for (let i = 0; i < rounds; i++) await round(i)
    t.comment(`link delay ${delayMs} ms: ${seen.reads} reads, ${seen.hits} hits, ${seen.stale} stale, the stalest ${seen.worstMs.toFixed(1)} ms after the write was acknowledged`)
    t.ok(seen.worstMs <= maxAgeMs, `link delay ${delayMs} ms: no read staler than ${maxAgeMs} ms (stalest ${seen.worstMs.toFixed(1)} ms)`)
    return { ...seen }
  }
  // Invalidations 10 ms late: hits are served, a few of them stale within the bound.
  const fast = await phase(10, 24)
  t.ok(fast.hits > 0, `hits served over a fast link (${fast.hits})`)
  // Invalidations 400 ms late, longer than READ_CACHE_MAX_AGE_MS: hits must stop rather than go stale.
  await phase(400, 6)
})

t.test('an ended hold is not served from the cache once its retention ran out (CHECKOUT_RESULT_RETENTION_MS)', async (t) => {
  // Active expiry off: Redis deletes the key, and sends its invalidation, only when a
  // command on the primary touches it. A reader elsewhere (a replica) already reads it
  // as gone; a busy Redis may take minutes to sample it.
  const lazy = await startRedis({ extraArgs: ['--enable-debug-command', 'yes'] })
  t.teardown(lazy.stop)
  await lazy.client().call('DEBUG', 'SET-ACTIVE-EXPIRE', '0')
  const prefix = `t${Date.now()}e:`
  // A long max age, so only the hold's own lifetime can end the entry.
  const env = { CHECKOUT_RESULT_RETENTION_MS: '1000', READ_CACHE_MAX_AGE_MS: '60000', READ_CACHE: 'true' }
  const b = await buildApp({ config: { ...testConfig(lazy.url, env), KEY_PREFIX: prefix } })
  t.teardown(() => b.close())
  t.ok(await until(() => b.store.readCache?.cache.tracking === true, 5000), 'tracking on')
  t.equal((await b.inject({ method: 'POST', url: '/checkout', ...json({ id: 'gone', ttlMs: 60_000 }) })).statusCode, 201)
  t.equal((await b.inject({ method: 'POST', url: '/checkout/gone/complete' })).statusCode, 200)
  t.ok(await until(async () => (await b.inject({ method: 'GET', url: '/checkout/gone' })).headers['x-cache'] === 'hit', 3000), 'cached')
  await sleep(1300)
  const late = await b.inject({ method: 'GET', url: '/checkout/gone' })
  t.equal(late.statusCode, 404, 'past its retention the hold is gone, from the cache too')
  t.equal(late.headers['x-cache'], 'miss')
})

t.test('byte bound: holds with large payloads are evicted by size (READ_CACHE_MAX_BYTES)', async (t) => {
  const app = await cachedApp(`t${Date.now()}f:`, { READ_CACHE_MAX_BYTES: String(64 * 1024) })
  t.teardown(() => app.close())
  const blob = 'x'.repeat(15_000)
  const n = 12
  for (let i = 0; i < n; i++) {
    t.equal((await app.inject({ method: 'POST', url: '/checkout', ...json({ id: `big-${i}`, ttlMs: 60_000, payload: { blob } }) })).statusCode, 201)
  }
  const pass = async () => {
    let hits = 0
    for (let i = 0; i < n; i++) if ((await app.inject({ method: 'GET', url: `/checkout/big-${i}` })).headers['x-cache'] === 'hit') hits++
    return hits
  }
  await pass()
  // Four 15 KB holds fill 64 KiB; re-reading all twelve in order evicts each before it is read again.
  t.equal(await pass(), 0, 'no hold survived twelve others at 64 KiB')
  const last = await app.inject({ method: 'GET', url: `/checkout/big-${n - 1}` })
  t.equal(last.headers['x-cache'], 'hit', 'the most recent is kept')
  t.ok(app.store.readCache!.cache.bytes <= 64 * 1024, `within the bound (${app.store.readCache!.cache.bytes} bytes)`)
})

t.test('READ_CACHE_MAX_AGE_MS and READ_CACHE_MAX_BYTES are validated at start', async (t) => {
  t.throws(() => loadConfig({ READ_CACHE_MAX_AGE_MS: '10' }), { name: 'ConfigError', message: /READ_CACHE_MAX_AGE_MS="10": expected an integer from 50 to 60000/ })
  t.throws(() => loadConfig({ READ_CACHE_MAX_BYTES: '1k' }), { name: 'ConfigError', message: /READ_CACHE_MAX_BYTES/ })
  t.match(loadConfig({}), { READ_CACHE_MAX_AGE_MS: 1000, READ_CACHE_MAX_BYTES: 64 * 1024 * 1024, READ_CACHE_MAX_ENTRIES: 100_000 })
})

t.test('refused at start with replica reads, in one line', async (t) => {
  const config = testConfig(redis.url, { READ_CACHE: 'true', REDIS_READ_FROM: 'replica', REDIS_REPLICA_URL: redis.url })
  await t.rejects(buildApp({ config }), { name: 'ConfigError', message: /READ_CACHE=true and REDIS_READ_FROM=replica cannot be combined/ })
})
