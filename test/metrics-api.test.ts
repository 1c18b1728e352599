import t from 'tap'
import { buildApp } from '../src/app.js'
import { json, testConfig } from './helpers/app.js'
import { startRedis } from './helpers/redis.js'

/** GET /metrics: requests by route pattern, method and status, and hold changes counted once. */
const redis = await startRedis()
t.teardown(redis.stop)
const app = await buildApp({ config: testConfig(redis.url) })
await app.ready()
t.teardown(() => app.close())

const scrape = async () => (await app.inject('/metrics')).body

/** The value of one sample, e.g. sample(text, 'checkout_holds_created_total'), or 0 when absent. */
function sample (text: string, name: string, labels: Record<string, string> = {}): number {
  for (const line of text.split('\n')) {
    const m = /^([a-z_:]+)(?:\{(.*)\})? (\S+)$/.exec(line)
    if (!m || m[1] !== name) continue
    const have = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((l) => [l[1], l[2]]))
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(m[3])
  }
  return 0
}

const holds = async () => {
  const text = await scrape()
  return Object.fromEntries(['created', 'conflicted', 'completed', 'cancelled', 'extended'].map((e) =>
    [e, sample(text, `checkout_holds_${e}_total`)]))
}

const post = async (url: string, body?: unknown, key?: string) => await app.inject({
  method: 'POST',
  url,
  ...(body === undefined ? {} : json(body)),
  ...(key === undefined ? {} : { headers: { ...(body === undefined ? {} : json(body).headers), 'idempotency-key': key } })
})

t.test('GET /metrics answers the Prometheus text format with the process metrics', async (t) => {
  const res = await app.inject('/metrics')
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /^text\/plain; version=0\.0\.4/)
  t.match(res.body, /^# HELP checkout_http_requests_total /m)
  t.match(res.body, /^process_cpu_user_seconds_total /m, 'default process metrics')
  t.match(res.body, /^# TYPE checkout_http_request_duration_seconds histogram$/m)
})

t.test('requests are counted by route pattern, method and status, never by raw URL', async (t) => {
  await app.inject('/checkout/raw-id-4711')
  await app.inject('/no-such-path-0815')
  const text = await scrape()
  t.equal(sample(text, 'checkout_http_requests_total', { method: 'GET', route: '/checkout/:id', status_code: '404' }), 1)
  t.equal(sample(text, 'checkout_http_requests_total', { method: 'GET', route: 'unmatched', status_code: '404' }), 1)
  t.equal(sample(text, 'checkout_http_request_duration_seconds_count', { method: 'GET', route: '/checkout/:id' }), 1, 'timed')
  t.notMatch(text, 'raw-id-4711', 'no order id in any label')
  t.notMatch(text, 'no-such-path-0815', 'no unmatched path in any label')
})

t.test('hold counters: create, conflict, complete, cancel, extend; idempotent replays count once', async (t) => {
  const before = await holds()
  t.equal((await post('/checkout', { id: 'm-1', ttlMs: 60_000 }, 'key-1')).statusCode, 201)
  const replay = await post('/checkout', { id: 'm-1', ttlMs: 60_000 }, 'key-1')
  t.equal(replay.statusCode, 201)
  t.equal(replay.headers['idempotent-replayed'], 'true', 'a replay')
  t.equal((await post('/checkout', { id: 'm-1', ttlMs: 5000 }, 'key-2')).statusCode, 409)
  t.equal((await post('/checkout', { id: 'm-1', ttlMs: 5000 }, 'key-2')).statusCode, 409, 'the conflict replayed')
  t.equal((await post('/checkout', { id: 'm-1', ttlMs: 5000 })).statusCode, 409, 'a second conflict')

  await post('/checkout', { id: 'm-2', ttlMs: 60_000 })
  t.equal((await post('/checkout/m-2/complete', undefined, 'done-1')).statusCode, 200)
  t.equal((await post('/checkout/m-2/complete', undefined, 'done-1')).headers['idempotent-replayed'], 'true')
  t.equal((await post('/checkout/m-2/complete')).statusCode, 200, 'a retry without a key: 200, nothing changed')
  await post('/checkout', { id: 'm-3', ttlMs: 60_000 })
  t.equal((await app.inject({ method: 'DELETE', url: '/checkout/m-3' })).statusCode, 200)
  t.equal((await app.inject({ method: 'DELETE', url: '/checkout/m-3' })).statusCode, 200, 'a retried cancel')
  await post('/checkout', { id: 'm-4', ttlMs: 60_000 })
  t.equal((await app.inject({ method: 'PATCH', url: '/checkout/m-4', ...json({ ttlMs: 120_000 }) })).statusCode, 200)
  t.equal((await app.inject({ method: 'PATCH', url: '/checkout/m-9', ...json({ ttlMs: 120_000 }) })).statusCode, 404, 'not counted')

  const after = await holds()
  const delta = Object.fromEntries(Object.entries(after).map(([k, v]) => [k, v - (before[k] ?? 0)]))
  t.same(delta, { created: 4, conflicted: 2, completed: 1, cancelled: 1, extended: 1 })
  const text = await scrape()
  t.equal(sample(text, 'checkout_http_requests_total', { method: 'POST', route: '/checkout', status_code: '409' }), 3,
    'the request counter counts every answer, replays included')
})

t.test('GET /metrics is in the API document as text', async (t) => {
  const doc = (await app.inject('/docs/json')).json() as { paths: Record<string, Record<string, unknown>> }
  t.match(JSON.stringify(doc.paths['/metrics']?.get), /"text\/plain"/)
})
