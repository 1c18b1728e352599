import t, { type Test } from 'tap'
import { testConfig } from './helpers/app.js'
import { startApi, startWorker, waitForOutput } from './helpers/processes.js'
import { startRedis } from './helpers/redis.js'
import { until } from './helpers/worker.js'

const redis = await startRedis()
t.teardown(redis.stop)
const env = { REDIS_URL: redis.url, KEY_PREFIX: testConfig(redis.url).KEY_PREFIX, READ_CACHE: 'true', EXPIRY_HANDLERS: 'log' }
const [a, b] = await Promise.all([startApi(env), startApi(env)])
t.teardown(async () => { await Promise.all([a.signal('SIGTERM'), b.signal('SIGTERM')]) })
await Promise.all([waitForOutput(a, 'read cache: tracking on'), waitForOutput(b, 'read cache: tracking on')])

const send = async (base: string, method: string, path: string, body?: unknown) => {
  const res = await fetch(`${base}${path}`, {
    method, ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
  })
  return { status: res.status, cache: res.headers.get('x-cache'), body: await res.json() as Record<string, unknown> }
}
const get = async (id: string) => await send(b.base, 'GET', `/checkout/${id}`)

/** A GET through B that misses and then one that hits: B has the hold cached. */
async function cachedInB (t: Test, id: string) {
  t.equal((await get(id)).cache, 'miss', `${id}: first read misses`)
  const hit = await get(id)
  t.equal(hit.cache, 'hit', `${id}: second read hits`)
  return hit.body
}

t.test('a change through A is seen by B on its very next read', async (t) => {
  for (const id of ['complete-me', 'cancel-me', 'extend-me']) t.equal((await send(a.base, 'POST', '/checkout', { id, ttlMs: 60_000 })).status, 201)

  await cachedInB(t, 'complete-me')
  t.equal((await send(a.base, 'POST', '/checkout/complete-me/complete')).status, 200)
  t.match(await get('complete-me'), { cache: 'miss', body: { status: 'completed' } })

  await cachedInB(t, 'cancel-me')
  t.equal((await send(a.base, 'DELETE', '/checkout/cancel-me')).status, 200)
  t.match(await get('cancel-me'), { cache: 'miss', body: { status: 'cancelled' } })

  const before = await cachedInB(t, 'extend-me')
  const extended = await send(a.base, 'PATCH', '/checkout/extend-me', { ttlMs: 120_000 })
  t.equal(extended.status, 200)
  const after = await get('extend-me')
  t.equal(after.cache, 'miss')
  t.equal(after.body.expiresAt, extended.body.expiresAt, 'the new deadline')
  t.not(after.body.expiresAt, before.expiresAt)
})

t.test('an expiry recorded by the worker is seen by B', async (t) => {
  const worker = await startWorker(env)
  t.teardown(() => worker.signal('SIGTERM'))
  t.equal((await send(a.base, 'POST', '/checkout', { id: 'expire-me', ttlMs: 1000 })).status, 201)
  await cachedInB(t, 'expire-me')
  // Until the worker records it, a hit computes "expired, outcome pending" from the deadline;
  // the worker's record changes the hash, so B reads it again.
  t.ok(await until(async () => (await get('expire-me')).body.outcome === 'handled', 5000), 'the handled outcome reaches B')
  t.match((await get('expire-me')).body, { status: 'expired', outcome: 'handled', expiredAt: String })
})

t.test('invalidation connections killed: B serves no stale entry', async (t) => {
  t.equal((await send(a.base, 'POST', '/checkout', { id: 'killed', ttlMs: 60_000 })).status, 201)
  await cachedInB(t, 'killed')
  const admin = redis.client()
  // Every pub/sub connection: A's, B's and the worker's (which reconnect by themselves).
  t.ok(Number(await admin.call('CLIENT', 'KILL', 'TYPE', 'pubsub')) >= 2)
  // While B's invalidation connection is down or just back, Redis could not tell B about this.
  const extended = await send(a.base, 'PATCH', '/checkout/killed', { ttlMs: 90_000 })
  t.equal(extended.status, 200)
  const read = await get('killed')
  t.equal(read.cache, 'miss', 'the cache was flushed when the connection dropped')
  t.equal(read.body.expiresAt, extended.body.expiresAt, 'the new deadline')
  t.ok(await until(async () => (await get('killed')).cache === 'hit', 5000), 'caching again once tracking is back')
  await send(a.base, 'DELETE', '/checkout/killed')
  t.match(await get('killed'), { cache: 'miss', body: { status: 'cancelled' } }, 'and invalidated again')
})

t.test('cached-reader connections killed: B serves no stale entry and tracks again', async (t) => {
  t.equal((await send(a.base, 'POST', '/checkout', { id: 'reader-killed', ttlMs: 60_000 })).status, 201)
  await cachedInB(t, 'reader-killed')
  const admin = redis.client()
  const list = await admin.client('LIST') as string
  const ids = [...list.matchAll(/^id=(\d+) .*name=checkout-expiry:api-cached-reader /gm)].map((m) => m[1]!)
  t.equal(ids.length, 2, 'one per API process')
  for (const id of ids) await admin.call('CLIENT', 'KILL', 'ID', id)
  const extended = await send(a.base, 'PATCH', '/checkout/reader-killed', { ttlMs: 90_000 })
  t.equal(extended.status, 200)
  const read = await get('reader-killed')
  t.equal(read.cache, 'miss')
  t.equal(read.body.expiresAt, extended.body.expiresAt, 'the new deadline')
  // The invalidation connection stayed up (subscribed): tracking is set up again with its id.
  t.ok(await until(async () => (await get('reader-killed')).cache === 'hit', 5000), 'caching again once the reader is back')
  await send(a.base, 'DELETE', '/checkout/reader-killed')
  t.match(await get('reader-killed'), { cache: 'miss', body: { status: 'cancelled' } }, 'and invalidated again')
})

t.test('reads through B while writes through A are in flight, under load: no answer staler than READ_CACHE_MAX_AGE_MS', async (t) => {
  const maxAgeMs = 1000 // the default, which A and B run with
  type Rank = readonly [number, number, number]
  const rank = (v: Record<string, unknown>): Rank => [Number(v.generation), v.status === 'pending' ? 0 : 1, Date.parse(String(v.expiresAt))]
  const older = (x: Rank, y: Rank) => x[0] < y[0] || (x[0] === y[0] && (x[1] < y[1] || (x[1] === y[1] && x[2] < y[2])))
  const sleep = async (ms: number) => await new Promise((resolve) => setTimeout(resolve, ms))
  const ids = ['w-0', 'w-1', 'w-2']
  const acked = new Map<string, Array<{ rank: Rank, at: number }>>()
  const ack = (id: string, state: Rank) => acked.get(id)!.push({ rank: state, at: performance.now() })
  let ttl = 60_000
  for (const id of ids) {
    acked.set(id, [])
    ack(id, rank((await send(a.base, 'POST', '/checkout', { id, ttlMs: ttl })).body))
  }
  // Load on both processes while the rounds run: polls of other holds, as checkout pages do.
  for (let i = 0; i < 4; i++) t.equal((await send(a.base, 'POST', '/checkout', { id: `load-${i}`, ttlMs: 60_000 })).status, 201)
  let loading = true
  const load = async (base: string, i: number) => {
    for (let n = 0; loading && n < 20_000; n++) await send(base, 'GET', `/checkout/load-${i % 4}`)
  }
  const loaders = [0, 1, 2, 3, 4, 5].map(async (i) => await load(i % 2 === 0 ? b.base : a.base, i))

  const write = async (id: string, i: number) => {
    ttl += 10
    if (i % 3 !== 2) {
      const res = await send(a.base, 'PATCH', `/checkout/${id}`, { ttlMs: ttl })
      if (res.status === 200) ack(id, rank(res.body))
      return
    }
    const [generation, , expiresAt] = acked.get(id)!.at(-1)!.rank
    if ((await send(a.base, 'DELETE', `/checkout/${id}`)).status === 200) ack(id, [generation, 1, expiresAt])
    ack(id, rank((await send(a.base, 'POST', '/checkout', { id, ttlMs: ttl })).body))
  }
  const seen = { reads: 0, hits: 0, stale: 0, worstMs: 0 }
  const staleMs: number[] = []
  const read = async (id: string) => {
    const startedAt = performance.now()
    const res = await get(id)
    seen.reads++
    if (res.cache === 'hit') seen.hits++
    const got = rank(res.body)
    // The first acknowledged state newer than the answer: stale by the time since A acknowledged it.
    const newer = acked.get(id)!.find((s) => older(got, s.rank))
    if (newer === undefined || newer.at > startedAt) return
    seen.stale++
    staleMs.push(startedAt - newer.at)
  }
  const rounds = 150
  for (let i = 0; i < rounds; i++) {
    const id = ids[i % ids.length]!
    // Reads while the write is in flight, and one sent the moment A's answer arrives.
    await Promise.all([write(id, i).then(async () => await read(id)), ...[0, 1, 3, 10, 30, 100].map(async (d) => { await sleep(d); await read(id) })])
  }
  loading = false
  await Promise.all(loaders)
  seen.worstMs = Math.max(0, ...staleMs)
  t.comment(`${rounds} rounds, ${seen.reads} reads through B, ${seen.hits} hits, ${seen.stale} stale ` +
    `(${staleMs.map((ms) => ms.toFixed(0)).join(', ')} ms after A acknowledged the newer state)`)
  t.ok(seen.worstMs <= maxAgeMs, `no answer staler than ${maxAgeMs} ms (stalest ${seen.worstMs.toFixed(1)} ms)`)
  t.ok(seen.hits > 0, 'the cache served reads')
})
