import t from 'tap'
import { testApp } from '../helpers/app.js'
import { startRedis } from '../helpers/redis.js'

/** A known path asked with a method it does not take is 405 with Allow, not 404 ROUTE_NOT_FOUND. */
const redis = await startRedis()
t.teardown(redis.stop)
const { app } = await testApp(redis.url)
t.teardown(() => app.close())

t.test('known path, other method: 405 METHOD_NOT_ALLOWED with Allow', async (t) => {
  for (const [method, url, allow] of [
    ['PUT', '/checkout/x', 'DELETE, GET, HEAD, PATCH'],
    ['OPTIONS', '/checkout', 'POST'],
    ['GET', '/checkout/x/complete', 'POST'],
    ['DELETE', '/readyz', 'GET, HEAD'],
    ['POST', '/metrics?x=1', 'GET, HEAD']
  ] as const) {
    const res = await app.inject({ method, url })
    t.equal(res.statusCode, 405, `${method} ${url}`)
    t.equal(res.headers.allow, allow, `${method} ${url}: Allow`)
    t.equal(res.json().code, 'METHOD_NOT_ALLOWED')
  }
})

t.test('unknown paths stay 404', async (t) => {
  for (const url of ['/nope', '/checkout/x/y', '/checkouts']) {
    const res = await app.inject({ method: 'GET', url })
    t.equal(res.statusCode, 404, url)
    t.equal(res.json().code, 'ROUTE_NOT_FOUND')
  }
})
