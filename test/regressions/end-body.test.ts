import t from 'tap'
import { json, testApp } from '../helpers/app.js'
import { startRedis } from '../helpers/redis.js'

/** Complete and cancel take no body, or `{}`: anything else is refused like any unknown field, and the hold stays pending. */
const redis = await startRedis()
t.teardown(redis.stop)
const { app } = await testApp(redis.url)
t.teardown(() => app.close())

const hold = async (id: string) => {
  t.equal((await app.inject({ method: 'POST', url: '/checkout', ...json({ id, ttlMs: 60_000 }) })).statusCode, 201)
}

t.test('a body other than {} is refused with 400 and changes nothing', async (t) => {
  for (const [method, url] of [['POST', '/checkout/eb-1/complete'], ['DELETE', '/checkout/eb-1']] as const) {
    await hold('eb-1')
    for (const body of [[1, 2, 3], { status: 'completed' }, 'x', 5]) {
      const res = await app.inject({ method, url, ...json(body) })
      t.equal(res.statusCode, 400, `${method} ${url} ${JSON.stringify(body)}`)
      t.equal(res.json().code, 'VALIDATION_FAILED')
    }
    t.equal((await app.inject('/checkout/eb-1')).json().status, 'pending', 'still pending')
    t.equal((await app.inject({ method, url, ...json({}) })).statusCode, 200, `${method} with {}`)
  }
})

t.test('no body at all, with or without content-type, is fine', async (t) => {
  await hold('eb-2')
  t.equal((await app.inject({ method: 'POST', url: '/checkout/eb-2/complete' })).statusCode, 200)
  await hold('eb-3')
  t.equal((await app.inject({ method: 'DELETE', url: '/checkout/eb-3', headers: { 'content-type': 'application/json' } })).statusCode, 200)
})
