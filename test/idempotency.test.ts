import calculateSlot from 'cluster-key-slot'
import t from 'tap'
import { json, testApp } from './helpers/app.js'
import { startRedis } from './helpers/redis.js'

/**
 * Idempotency-Key: a client whose request timed out sends it again and gets
 * the first response, not a conflict with its own hold.
 */
const redis = await startRedis()
t.teardown(redis.stop)
const { app, config } = await testApp(redis.url)
t.teardown(() => app.close())

const withKey = (key: string, body?: unknown) => ({
  headers: { 'idempotency-key': key, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
  ...(body === undefined ? {} : { payload: JSON.stringify(body) })
})

t.test('POST sent again with the same key: the first 201, marked as replayed, one hold', async (t) => {
  const body = { id: 'idem-1', ttlMs: 60_000, payload: { cart: ['a'] } }
  const first = await app.inject({ method: 'POST', url: '/checkout', ...withKey('k-1', body) })
  t.equal(first.statusCode, 201)
  t.equal(first.headers['idempotent-replayed'], undefined, 'the first response is not a replay')
  const again = await app.inject({ method: 'POST', url: '/checkout', ...withKey('k-1', { payload: { cart: ['a'] }, ttlMs: 60_000, id: 'idem-1' }) })
  t.equal(again.statusCode, 201, 'not 409: the same request, keys in any order')
  t.equal(again.headers['idempotent-replayed'], 'true')
  t.same(again.json(), first.json(), 'the same body')
  const noKey = await app.inject({ method: 'POST', url: '/checkout', ...json(body) })
  t.equal(noKey.statusCode, 409, 'without the key it is a conflict, as before')
})

t.test('a replay is the first response byte for byte, whatever key order the retry sends', async (t) => {
  // The same request by the fingerprint (keys sorted), spelled another way by the retry.
  const first = await app.inject({
    method: 'POST', url: '/checkout', headers: { 'idempotency-key': 'order-k', 'content-type': 'application/json' },
    payload: '{"id":"idem-order","ttlMs":60000,"payload":{"b":1,"a":2,"n":{"z":[{"y":1,"x":2}],"c":3}}}'
  })
  t.equal(first.statusCode, 201)
  const again = await app.inject({
    method: 'POST', url: '/checkout', headers: { 'idempotency-key': 'order-k', 'content-type': 'application/json' },
    payload: '{"payload":{"n":{"c":3,"z":[{"x":2,"y":1}]},"a":2,"b":1},"ttlMs":60000,"id":"idem-order"}'
  })
  t.equal(again.statusCode, 201)
  t.equal(again.headers['idempotent-replayed'], 'true')
  t.equal(again.body, first.body, 'the same bytes: the payload in the first request\'s key order')
  // The record, not the order hash, keeps the first payload: still so once the hold is gone.
  // Cancelled, then its order hash deleted: in every key format nothing of the hold is left.
  t.equal((await app.inject({ method: 'DELETE', url: '/checkout/idem-order' })).statusCode, 200)
  const client = redis.client()
  await client.del(app.store.keys.order('idem-order').order)
  const late = await app.inject({
    method: 'POST', url: '/checkout', headers: { 'idempotency-key': 'order-k', 'content-type': 'application/json' },
    payload: '{"id":"idem-order","payload":{"a":2,"b":1,"n":{"c":3,"z":[{"x":2,"y":1}]}},"ttlMs":60000}'
  })
  t.equal(late.body, first.body, 'after the order hash is gone')
})

t.test('the same key with another request: 422, and nothing changes', async (t) => {
  await app.inject({ method: 'POST', url: '/checkout', ...withKey('k-2', { id: 'idem-2', ttlMs: 60_000 }) })
  const other = await app.inject({ method: 'POST', url: '/checkout', ...withKey('k-2', { id: 'idem-2', ttlMs: 30_000 }) })
  t.equal(other.statusCode, 422)
  t.match(other.json(), { statusCode: 422, code: 'IDEMPOTENCY_KEY_REUSED', error: 'Unprocessable Entity', message: /different request/ })
  const complete = await app.inject({ method: 'POST', url: '/checkout/idem-2/complete', ...withKey('k-2') })
  t.equal(complete.statusCode, 422, 'another route with the same key and order is another request')
  t.match((await app.inject({ method: 'GET', url: '/checkout/idem-2' })).json(), { status: 'pending' })
})

t.test('extend, complete and cancel sent again: the first response, applied once', async (t) => {
  await app.inject({ method: 'POST', url: '/checkout', ...json({ id: 'idem-3', ttlMs: 60_000 }) })
  const first = await app.inject({ method: 'PATCH', url: '/checkout/idem-3', ...withKey('ext', { ttlMs: 120_000 }) })
  await new Promise((resolve) => setTimeout(resolve, 20))
  const again = await app.inject({ method: 'PATCH', url: '/checkout/idem-3', ...withKey('ext', { ttlMs: 120_000 }) })
  t.equal(again.headers['idempotent-replayed'], 'true')
  t.equal(again.json().expiresAt, first.json().expiresAt, 'the deadline moved once')
  t.equal((await app.inject({ method: 'GET', url: '/checkout/idem-3' })).json().expiresAt, first.json().expiresAt)

  const done = await app.inject({ method: 'POST', url: '/checkout/idem-3/complete', ...withKey('fin') })
  const doneAgain = await app.inject({ method: 'POST', url: '/checkout/idem-3/complete', ...withKey('fin') })
  t.equal(doneAgain.statusCode, 200)
  t.equal(doneAgain.headers['idempotent-replayed'], 'true')
  t.same(doneAgain.json(), done.json())

  await app.inject({ method: 'POST', url: '/checkout', ...json({ id: 'idem-4', ttlMs: 60_000 }) })
  const cancel = await app.inject({ method: 'DELETE', url: '/checkout/idem-4', ...withKey('gone') })
  const cancelAgain = await app.inject({ method: 'DELETE', url: '/checkout/idem-4', ...withKey('gone') })
  t.same([cancelAgain.statusCode, cancelAgain.headers['idempotent-replayed'], cancelAgain.json()], [200, 'true', cancel.json()])
})

t.test('an error answer is replayed too, even after the state changed', async (t) => {
  await app.inject({ method: 'POST', url: '/checkout', ...json({ id: 'idem-5', ttlMs: 60_000 }) })
  const conflict = await app.inject({ method: 'POST', url: '/checkout', ...withKey('late', { id: 'idem-5', ttlMs: 60_000 }) })
  t.equal(conflict.statusCode, 409)
  await app.inject({ method: 'DELETE', url: '/checkout/idem-5' })
  const again = await app.inject({ method: 'POST', url: '/checkout', ...withKey('late', { id: 'idem-5', ttlMs: 60_000 }) })
  t.equal(again.statusCode, 409, 'the first answer, not a new hold')
  t.equal(again.headers['idempotent-replayed'], 'true')
  t.same(again.json(), conflict.json())
})

t.test('keys are scoped to the order: the same key for two orders makes two holds', async (t) => {
  const a = await app.inject({ method: 'POST', url: '/checkout', ...withKey('shared', { id: 'idem-6', ttlMs: 60_000 }) })
  const b = await app.inject({ method: 'POST', url: '/checkout', ...withKey('shared', { id: 'idem-7', ttlMs: 60_000 }) })
  t.same([a.statusCode, b.statusCode], [201, 201])
})

t.test('the key is kept with the order under its hash tag, for 24 h', async (t) => {
  await app.inject({ method: 'POST', url: '/checkout', ...withKey('slot', { id: 'idem-8', ttlMs: 60_000 }) })
  const client = redis.client()
  const [record] = await client.keys(`${config.KEY_PREFIX}*idem:idem-8:*`)
  // The order's keys share its hash tag whether or not it has an order hash yet (key format 3 writes one when the hold ends).
  const order = app.store.keys.order('idem-8').order
  t.ok(record, 'a record exists')
  t.equal(calculateSlot(record!), calculateSlot(order), 'in the order\'s slot')
  const ttl = await client.pttl(record!)
  t.ok(ttl > 23 * 3_600_000 && ttl <= 24 * 3_600_000, `expires in 24 h (${ttl} ms)`)
})

t.test('a malformed key is a 400 naming the header', async (t) => {
  for (const key of ['x'.repeat(256), 'has space', 'ünïcode']) {
    const res = await app.inject({ method: 'POST', url: '/checkout', headers: { 'idempotency-key': key, 'content-type': 'application/json' }, payload: JSON.stringify({ id: 'idem-bad' }) })
    t.equal(res.statusCode, 400, key.slice(0, 20))
    t.match(res.json(), { code: 'VALIDATION_FAILED', message: /headers\.idempotency-key/ })
  }
  t.equal((await app.inject({ method: 'GET', url: '/checkout/idem-bad' })).statusCode, 404, 'nothing stored')
})
