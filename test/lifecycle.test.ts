import t from 'tap'
import { json, testApp } from './helpers/app.js'
import { startRedis } from './helpers/redis.js'

const redis = await startRedis()
t.teardown(redis.stop)
const { app, config } = await testApp(redis.url, { CHECKOUT_RESULT_RETENTION_MS: '60000' })
t.teardown(() => app.close())

const post = async (id: string, ttlMs: number, payload?: object) =>
  await app.inject({ method: 'POST', url: '/checkout', ...json({ id, ttlMs, payload }) })
const get = async (id: string) => await app.inject({ method: 'GET', url: `/checkout/${id}` })
const sleep = async (ms: number) => await new Promise((resolve) => setTimeout(resolve, ms))

t.test('complete: 200, then GET shows completed; complete again is 200 with the same state, cancel is 409', async (t) => {
  await post('c1', 10_000)
  const res = await app.inject({ method: 'POST', url: '/checkout/c1/complete' })
  t.equal(res.statusCode, 200)
  t.match(res.json(), { id: 'c1', status: 'completed', completedAt: String })
  const g = (await get('c1')).json()
  t.match(g, { status: 'completed', ttl: 0, ttlMs: 0, completedAt: String })
  t.notOk('outcome' in g, 'no expiry outcome for a completed order')
  await sleep(5)
  const again = await app.inject({ method: 'POST', url: '/checkout/c1/complete' })
  t.equal(again.statusCode, 200, 'a retried complete is not a conflict')
  t.same(again.json(), res.json(), 'the final state, with the first completion time')
  const cancel = await app.inject({ method: 'DELETE', url: '/checkout/c1' })
  t.match(cancel.json(), { statusCode: 409, code: 'CHECKOUT_NOT_PENDING', status: 'completed' })
})

t.test('cancel: 200, then GET shows cancelled; cancel again is 200, complete is 409', async (t) => {
  await post('d1', 10_000)
  const res = await app.inject({ method: 'DELETE', url: '/checkout/d1' })
  t.match(res.json(), { id: 'd1', status: 'cancelled', cancelledAt: String })
  t.match((await get('d1')).json(), { status: 'cancelled', cancelledAt: String })
  const again = await app.inject({ method: 'DELETE', url: '/checkout/d1' })
  t.equal(again.statusCode, 200)
  t.same(again.json(), res.json())
  const complete = await app.inject({ method: 'POST', url: '/checkout/d1/complete' })
  t.match(complete.json(), { statusCode: 409, code: 'CHECKOUT_NOT_PENDING', status: 'cancelled' })
})

t.test('unknown ids: 404 on complete, cancel and patch', async (t) => {
  for (const req of [
    { method: 'POST' as const, url: '/checkout/nobody/complete' },
    { method: 'DELETE' as const, url: '/checkout/nobody' },
    { method: 'PATCH' as const, url: '/checkout/nobody', ...json({ ttlMs: 5000 }) }
  ]) {
    t.match((await app.inject(req)).json(), { statusCode: 404, code: 'CHECKOUT_NOT_FOUND' }, req.method)
  }
})

t.test('patch moves the deadline', async (t) => {
  const created = (await post('p1', 2000)).json()
  const res = await app.inject({ method: 'PATCH', url: '/checkout/p1', ...json({ ttlMs: 60_000 }) })
  t.equal(res.statusCode, 200)
  const body = res.json()
  t.match(body, { id: 'p1', status: 'pending', generation: 1 })
  t.ok(body.ttlMs > 59_000, `ttlMs is the new time left (${body.ttlMs})`)
  t.ok(Date.parse(body.expiresAt) > Date.parse(created.expiresAt) + 50_000, 'expiresAt moved')
  t.equal((await get('p1')).json().expiresAt, body.expiresAt, 'GET agrees')
  // Format 3 has no timer key per hold (docs/keys.md).
  if (config.KEY_FORMAT !== 3) {
    const keys = redis.client()
    const timers = await keys.keys('*timer:p1')
    t.ok((await keys.pttl(timers[0] as string)) > 59_000, 'the timer key moved too')
  }
  const older = await app.inject({ method: 'PATCH', url: '/checkout/p1', ...json({ expire: 30 }) })
  t.equal(older.json().ttl, 30, 'expire in seconds works too')
  const bad = await app.inject({ method: 'PATCH', url: '/checkout/p1', ...json({}) })
  t.match(bad.json(), { statusCode: 400, code: 'VALIDATION_FAILED' })
  const tooShort = await app.inject({ method: 'PATCH', url: '/checkout/p1', ...json({ ttlMs: 10 }) })
  t.match(tooShort.json(), { statusCode: 400, code: 'TTL_OUT_OF_RANGE' })
})

t.test('a lapsed hold reads as expired, refuses complete/patch, and the id can be held again', async (t) => {
  await post('e1', 1000, { n: 1 })
  await sleep(1100)
  const g = (await get('e1')).json()
  t.match(g, { status: 'expired', ttlMs: 0, outcome: 'pending', payload: { n: 1 } })
  const complete = await app.inject({ method: 'POST', url: '/checkout/e1/complete' })
  t.match(complete.json(), { statusCode: 409, code: 'CHECKOUT_NOT_PENDING', status: 'expired' })
  const patch = await app.inject({ method: 'PATCH', url: '/checkout/e1', ...json({ ttlMs: 5000 }) })
  t.match(patch.json(), { statusCode: 409, status: 'expired' })
  t.match((await get('e1')).json(), { status: 'expired', expiredAt: String })

  const again = await post('e1', 5000, { n: 2 })
  t.equal(again.statusCode, 201, 'checkout -> expire -> checkout again')
  t.match(again.json(), { generation: 2, status: 'pending', payload: { n: 2 } })
})

t.test('a completed or cancelled id can be held again as a new generation', async (t) => {
  await post('g1', 5000)
  await app.inject({ method: 'DELETE', url: '/checkout/g1' })
  const again = await post('g1', 5000)
  t.equal(again.statusCode, 201)
  t.equal(again.json().generation, 2)
})

t.test('ended holds disappear after the retention', async (t) => {
  const short = await testApp(redis.url, { CHECKOUT_RESULT_RETENTION_MS: '1000' })
  t.teardown(() => short.app.close())
  await short.app.inject({ method: 'POST', url: '/checkout', ...json({ id: 'r1', ttlMs: 5000 }) })
  await short.app.inject({ method: 'POST', url: '/checkout/r1/complete' })
  t.equal((await short.app.inject('/checkout/r1')).statusCode, 200)
  await sleep(1200)
  t.equal((await short.app.inject('/checkout/r1')).statusCode, 404)
})
