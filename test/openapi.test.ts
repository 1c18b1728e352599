import { Validator } from '@seriousme/openapi-schema-validator'
import t from 'tap'
import { Errors } from '../src/errors.js'
import { testApp } from './helpers/app.js'
import { startRedis } from './helpers/redis.js'

/** The OpenAPI document is valid and describes every route the app serves. */
const redis = await startRedis()
t.teardown(redis.stop)
const { app } = await testApp(redis.url)
t.teardown(() => app.close())

t.test('GET /docs/json is a valid OpenAPI 3 document with every route and its statuses', async (t) => {
  const res = await app.inject('/docs/json')
  t.equal(res.statusCode, 200)
  const doc = res.json() as { openapi: string, paths: Record<string, Record<string, { responses: Record<string, unknown> }>> }
  t.match(doc.openapi, /^3\./)
  const result = await new Validator().validate(doc)
  t.same(result.errors, undefined, 'valid')
  t.equal(result.valid, true)

  const served = app.printRoutes({ commonPrefix: false })
  const expected = [
    ['post', '/checkout', ['401', '429', '201', '400', '409', '413', '415', '422', '500', '503']],
    ['get', '/checkout/{id}', ['401', '429', '200', '400', '404', '500', '503']],
    ['patch', '/checkout/{id}', ['401', '429', '200', '400', '404', '409', '422', '500', '503']],
    ['delete', '/checkout/{id}', ['401', '429', '200', '400', '404', '409', '422', '500', '503']],
    ['post', '/checkout/{id}/complete', ['401', '429', '200', '400', '404', '409', '422', '500', '503']],
    ['get', '/healthz', ['200']],
    ['get', '/metrics', ['200']],
    ['get', '/readyz', ['200', '500', '503']]
  ] as const
  for (const [method, path, statuses] of expected) {
    const op = doc.paths[path]?.[method]
    t.ok(op, `${method.toUpperCase()} ${path} is documented`)
    t.same(Object.keys(op?.responses ?? {}).sort(), [...statuses].sort(), `${method.toUpperCase()} ${path} statuses`)
    t.match(served, path.replace('{id}', ':id').split('/').pop() ?? '', `${path} is served`)
  }
  const text = JSON.stringify(doc)
  // 405, 408, 414 and 431 come from the HTTP layer or the router before any route; the README lists them.
  for (const code of Object.keys(Errors).filter((c) => !['URL_TOO_LONG', 'HEADERS_TOO_LARGE', 'REQUEST_TIMEOUT', 'METHOD_NOT_ALLOWED'].includes(c))) {
    t.match(text, `"${code}"`, `${code} is named`)
  }
  t.match(JSON.stringify(doc.paths['/checkout']?.post), /order-1001/, 'with examples')
  const conflict = JSON.stringify(doc.paths['/checkout']?.post?.responses['409'])
  t.match(conflict, /CHECKOUT_EXISTS/, 'a status lists its codes')
  t.same(doc.paths['/checkout/{id}']?.get && (doc.paths['/checkout/{id}'].get as { security?: unknown }).security, [{ bearerAuth: [] }],
    'checkout routes name the bearer scheme')
  const documented = Object.keys(doc.paths).filter((p) => !p.startsWith('/docs'))
  t.same(documented.sort(), [...new Set(expected.map(([, p]) => p))].sort(), 'nothing undocumented, nothing extra')
})

t.test('GET /docs serves the browsable UI', async (t) => {
  const res = await app.inject('/docs/')
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /text\/html/)
})
