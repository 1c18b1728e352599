import t from 'tap'
import { json, testApp } from './helpers/app.js'
import { startRedis } from './helpers/redis.js'

const redis = await startRedis()
t.teardown(redis.stop)
const { app, config } = await testApp(redis.url)
t.teardown(() => app.close())

const post = async (body: unknown) => await app.inject({ method: 'POST', url: '/checkout', ...json(body) })

t.test('POST creates a hold; GET reads it with time left', async (t) => {
  const res = await post({ id: 'order-1', ttlMs: 5000, payload: { sku: 'A1', qty: 2 } })
  t.equal(res.statusCode, 201)
  const body = res.json()
  t.match(body, { id: 'order-1', status: 'pending', ttl: 5, ttlMs: 5000, generation: 1, payload: { sku: 'A1', qty: 2 } })
  t.ok(Date.parse(body.expiresAt) - Date.parse(body.createdAt) === 5000, 'expiresAt is createdAt + ttlMs')

  const get = await app.inject({ method: 'GET', url: '/checkout/order-1' })
  t.equal(get.statusCode, 200)
  const g = get.json()
  t.match(g, { id: 'order-1', status: 'pending', payload: { sku: 'A1', qty: 2 }, expiresAt: body.expiresAt })
  t.ok(g.ttlMs > 0 && g.ttlMs <= 5000, `ttlMs counts down (${g.ttlMs})`)
  t.equal(g.ttl, Math.ceil(g.ttlMs / 1000))
})

t.test('older clients: {"id", "expire": seconds}', async (t) => {
  const res = await post({ id: 'bf4dcf5b-a744-40c7-8f55-bf6481d70df3', expire: 20 })
  t.equal(res.statusCode, 201)
  t.match(res.json(), { status: 'pending', ttl: 20, ttlMs: 20000 })
  t.notOk('payload' in res.json(), 'no payload key when none was sent')
})

t.test('no ttl uses CHECKOUT_DEFAULT_TTL_MS', async (t) => {
  const res = await post({ id: 'default-ttl' })
  t.equal(res.statusCode, 201)
  t.equal(res.json().ttlMs, config.CHECKOUT_DEFAULT_TTL_MS)
})

t.test('409 CHECKOUT_EXISTS with the remaining ttlMs', async (t) => {
  await post({ id: 'dup', ttlMs: 10_000 })
  const res = await post({ id: 'dup', ttlMs: 3000 })
  t.equal(res.statusCode, 409)
  const body = res.json()
  t.match(body, { statusCode: 409, code: 'CHECKOUT_EXISTS', error: 'Conflict' })
  t.ok(body.ttlMs > 9000 && body.ttlMs <= 10_000, `ttlMs of the existing hold (${body.ttlMs})`)
})

t.test('100 parallel POSTs of one id: exactly one 201', async (t) => {
  const results = await Promise.all(Array.from({ length: 100 }, async () => await post({ id: 'race', ttlMs: 30_000 })))
  const codes = results.map((r) => r.statusCode)
  t.equal(codes.filter((c) => c === 201).length, 1)
  t.equal(codes.filter((c) => c === 409).length, 99)
})

t.test('GET is one round trip', async (t) => {
  await post({ id: 'one-trip', ttlMs: 10_000 })
  const client = redis.client()
  await client.config('RESETSTAT')
  await app.inject({ method: 'GET', url: '/checkout/one-trip' })
  const stats = await client.info('commandstats')
  const calls = [...stats.matchAll(/^cmdstat_(\w+):calls=(\d+)/gm)]
    .filter(([, cmd]) => cmd !== 'info' && cmd !== 'config')
    .map(([, cmd, n]) => [cmd, Number(n)])
  // commandstats also counts the commands the script runs inside Redis (get-1.lua, packed-get-2.lua).
  const inScript = new Set(['hgetall', 'time', 'hget', 'hmget', 'exists'])
  t.same(calls.filter(([cmd]) => !inScript.has(cmd as string)), [['evalsha', 1]], 'a single EVALSHA answers the GET')
})

t.test('404 CHECKOUT_NOT_FOUND', async (t) => {
  const res = await app.inject({ method: 'GET', url: '/checkout/never-held' })
  t.equal(res.statusCode, 404)
  t.match(res.json(), { statusCode: 404, code: 'CHECKOUT_NOT_FOUND', error: 'Not Found', message: /never-held/ })
})

t.test('validation errors are 4xx that name the problem', async (t) => {
  const cases: Array<[unknown, number, string, RegExp]> = [
    [{ id: 'bad id!' }, 400, 'VALIDATION_FAILED', /body\.id must match pattern/],
    [{ id: '' }, 400, 'VALIDATION_FAILED', /body\.id/],
    [{ id: 'x'.repeat(129) }, 400, 'VALIDATION_FAILED', /body\.id must NOT have more than 128/],
    [{}, 400, 'VALIDATION_FAILED', /must have required property 'id'/],
    [{ id: 'a', extra: 1 }, 400, 'VALIDATION_FAILED', /unknown field "extra"/],
    [{ id: 'a', ttlMs: 1.5 }, 400, 'VALIDATION_FAILED', /body\.ttlMs must be integer/],
    [{ id: 'a', ttlMs: 'soon' }, 400, 'VALIDATION_FAILED', /body\.ttlMs must be integer/],
    [{ id: 'a', ttlMs: 999 }, 400, 'TTL_OUT_OF_RANGE', /999 ms is out of range: allowed 1000 to 86400000/],
    [{ id: 'a', ttlMs: 86_400_001 }, 400, 'TTL_OUT_OF_RANGE', /86400001/],
    [{ id: 'a', expire: 0 }, 400, 'TTL_OUT_OF_RANGE', /0 ms/],
    [{ id: 'a', expire: 100_000 }, 400, 'TTL_OUT_OF_RANGE', /100000000 ms/],
    [{ id: 'a', ttlMs: 5000, expire: 5 }, 400, 'VALIDATION_FAILED', /either ttlMs .* or expire/],
    [{ id: 'a', payload: 'text' }, 400, 'VALIDATION_FAILED', /body\.payload must be object/],
    [{ id: 'a', payload: { blob: 'x'.repeat(17 * 1024) } }, 413, 'PAYLOAD_TOO_LARGE', /at most 16384/],
    [[1, 2], 400, 'VALIDATION_FAILED', /body must be object/]
  ]
  for (const [body, status, code, message] of cases) {
    const res = await post(body)
    t.equal(res.statusCode, status, `${JSON.stringify(body).slice(0, 60)} -> ${status}`)
    t.match(res.json(), { statusCode: status, code, message }, code)
  }
  const invalidParam = await app.inject({ method: 'GET', url: '/checkout/bad%20id' })
  t.match(invalidParam.json(), { statusCode: 400, code: 'VALIDATION_FAILED', message: /params\.id/ })
})

t.test('a payload just under 16 KiB is accepted and returned', async (t) => {
  const payload = { blob: 'y'.repeat(16 * 1024 - 20) }
  const res = await post({ id: 'big-payload', ttlMs: 5000, payload })
  t.equal(res.statusCode, 201)
  const get = await app.inject({ method: 'GET', url: '/checkout/big-payload' })
  t.same(get.json().payload, payload)
})

t.test('transport errors: invalid JSON, empty body, oversized body, wrong content type, unknown route', async (t) => {
  const bad = await app.inject({ method: 'POST', url: '/checkout', headers: { 'content-type': 'application/json' }, payload: '{"id": ' })
  t.match(bad.json(), { statusCode: 400, code: 'INVALID_JSON' })
  const empty = await app.inject({ method: 'POST', url: '/checkout', headers: { 'content-type': 'application/json' }, payload: '' })
  t.match(empty.json(), { statusCode: 400, code: 'VALIDATION_FAILED', message: /empty body/ })
  const huge = await app.inject({ method: 'POST', url: '/checkout', ...json({ id: 'a', payload: { blob: 'z'.repeat(70 * 1024) } }) })
  t.match(huge.json(), { statusCode: 413, code: 'BODY_TOO_LARGE' })
  const text = await app.inject({ method: 'POST', url: '/checkout', headers: { 'content-type': 'text/plain' }, payload: 'id=a' })
  t.match(text.json(), { statusCode: 415, code: 'UNSUPPORTED_MEDIA_TYPE' })
  const none = await app.inject({ method: 'GET', url: '/nowhere' })
  t.match(none.json(), { statusCode: 404, code: 'ROUTE_NOT_FOUND' })
})

t.test('a 500 never shows internals', async (t) => {
  await post({ id: 'corrupt', ttlMs: 10_000 })
  // Ended, so every key format keeps it under order:<id>: a hash (formats 1, 2) or one packed string (format 3).
  t.equal((await app.inject({ method: 'POST', url: '/checkout/corrupt/complete' })).statusCode, 200)
  const client = redis.client()
  const [orderKey] = await client.keys(`${config.KEY_PREFIX}*order:corrupt`)
  t.ok(orderKey, 'the order record')
  if (await client.type(orderKey as string) === 'hash') await client.hset(orderKey as string, 'p', '{not json')
  else await client.set(orderKey as string, '\u0001not a record', 'KEEPTTL')
  const res = await app.inject({ method: 'GET', url: '/checkout/corrupt' })
  t.equal(res.statusCode, 500)
  t.same(res.json(), { statusCode: 500, code: 'INTERNAL', error: 'Internal Server Error', message: 'Internal server error' })
})

t.test('health and readiness', async (t) => {
  t.same((await app.inject('/healthz')).json(), { status: 'ok' })
  t.same((await app.inject('/readyz')).json(), { status: 'ready' })
})
