import { request as httpRequest } from 'node:http'
import t, { type Test } from 'tap'
import { json, testApp } from './helpers/app.js'
import { startRedis } from './helpers/redis.js'

/**
 * Every request gets a clear answer in the common error body
 * { statusCode, code, error, message }, including the errors Fastify and
 * Node raise before a route runs; bodies are validated strictly.
 */
const redis = await startRedis()
t.teardown(redis.stop)
const { app } = await testApp(redis.url)
t.teardown(() => app.close())

const commonBody = (t: Test, body: unknown, statusCode: number, code: string) =>
  t.match(body, { statusCode, code, error: String, message: String }, `${statusCode} ${code} in the common body`)

t.test('every route accepts every id POST accepts; a 129-character id is a 400 naming the limit', async (t) => {
  for (const id of ['a'.repeat(101), 'b'.repeat(128)]) {
    t.equal((await app.inject({ method: 'POST', url: '/checkout', ...json({ id, ttlMs: 60_000 }) })).statusCode, 201)
    t.equal((await app.inject({ method: 'GET', url: `/checkout/${id}` })).statusCode, 200, `GET ${id.length}`)
    t.equal((await app.inject({ method: 'PATCH', url: `/checkout/${id}`, ...json({ ttlMs: 30_000 }) })).statusCode, 200, `PATCH ${id.length}`)
  }
  t.equal((await app.inject({ method: 'POST', url: `/checkout/${'a'.repeat(101)}/complete` })).statusCode, 200)
  t.equal((await app.inject({ method: 'DELETE', url: `/checkout/${'b'.repeat(128)}` })).statusCode, 200)
  for (const [method, suffix] of [['GET', ''], ['DELETE', ''], ['POST', '/complete']] as const) {
    const res = await app.inject({ method, url: `/checkout/${'c'.repeat(129)}${suffix}` })
    t.equal(res.statusCode, 400, `${method} 129`)
    t.match(res.json(), { code: 'VALIDATION_FAILED', message: /params\.id must NOT have more than 128 characters/ })
  }
  const huge = await app.inject({ method: 'GET', url: `/checkout/${'d'.repeat(5000)}` })
  t.equal(huge.statusCode, 400)
  commonBody(t, huge.json(), 400, 'VALIDATION_FAILED')
})

t.test('a URL that is not valid percent-encoding: 400 in the common body', async (t) => {
  const res = await app.inject({ method: 'GET', url: '/checkout/%E0%A4%A' })
  commonBody(t, res.json(), 400, 'INVALID_URL')
})

t.test('bodies are validated strictly: no type coercion, the message names the field and the type', async (t) => {
  const cases: Array<[unknown, RegExp]> = [
    [{ id: 123 }, /body\.id must be string/],
    [{ id: 'strict-1', ttlMs: '5000' }, /body\.ttlMs must be integer/],
    [{ id: 'strict-2', ttlMs: [5000] }, /body\.ttlMs must be integer/],
    [{ id: 'strict-3', ttlMs: null }, /body\.ttlMs must be integer/],
    [{ id: 'strict-4', ttlMs: true }, /body\.ttlMs must be integer/],
    [{ id: 'strict-5', expire: '20' }, /body\.expire must be integer/],
    [{ id: ['strict-6'] }, /body\.id must be string/]
  ]
  for (const [body, message] of cases) {
    const res = await app.inject({ method: 'POST', url: '/checkout', ...json(body) })
    t.equal(res.statusCode, 400, JSON.stringify(body))
    t.match(res.json(), { code: 'VALIDATION_FAILED', message })
  }
  const patch = await app.inject({ method: 'PATCH', url: '/checkout/anything', ...json({ ttlMs: '5000' }) })
  t.match(patch.json(), { statusCode: 400, code: 'VALIDATION_FAILED', message: /body\.ttlMs must be integer/ })
  for (const id of ['123', 'strict-1', 'strict-2', 'strict-3', 'strict-4', 'strict-5']) {
    t.equal((await app.inject({ method: 'GET', url: `/checkout/${id}` })).statusCode, 404, `nothing stored for ${id}`)
  }
})

t.test('complete and cancel with content-type application/json and no body are fine', async (t) => {
  for (const [method, url, id] of [['POST', '/checkout/empty-1/complete', 'empty-1'], ['DELETE', '/checkout/empty-2', 'empty-2']] as const) {
    await app.inject({ method: 'POST', url: '/checkout', ...json({ id, ttlMs: 60_000 }) })
    const res = await app.inject({ method, url, headers: { 'content-type': 'application/json' }, payload: '' })
    t.equal(res.statusCode, 200, `${method} ${url}`)
  }
  const post = await app.inject({ method: 'POST', url: '/checkout', headers: { 'content-type': 'application/json' }, payload: '' })
  t.match(post.json(), { statusCode: 400, code: 'VALIDATION_FAILED', message: /body must be a JSON object, got an empty body/ })
})

t.test('415 names the content type received and the one accepted', async (t) => {
  const text = await app.inject({ method: 'POST', url: '/checkout', headers: { 'content-type': 'text/plain' }, payload: 'id=a' })
  t.match(text.json(), { statusCode: 415, code: 'UNSUPPORTED_MEDIA_TYPE', message: 'Content-Type text/plain is not supported; send application/json' })
  const xml = await app.inject({ method: 'POST', url: '/checkout', headers: { 'content-type': 'application/xml; charset=utf-8' }, payload: '<a/>' })
  t.match(xml.json(), { message: 'Content-Type application/xml; charset=utf-8 is not supported; send application/json' })
})

/** A raw HTTP request to the listening app, for errors that happen before Fastify sees the request. */
async function raw (port: number, head: string): Promise<{ status: number, body: string }> {
  return await new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, method: 'GET', path: '/healthz', headers: { 'x-big': head } }, (res) => {
      let body = ''
      res.on('data', (d: Buffer) => { body += d.toString() })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
    })
    req.on('error', reject)
    req.end()
  })
}

t.test('errors Node raises before Fastify (headers too large) use the common body too', async (t) => {
  const { app: listening } = await testApp(redis.url)
  t.teardown(() => listening.close())
  await listening.listen({ port: 0, host: '127.0.0.1' })
  const port = (listening.server.address() as { port: number }).port
  const res = await raw(port, 'x'.repeat(20 * 1024))
  t.equal(res.status, 431)
  commonBody(t, JSON.parse(res.body), 431, 'HEADERS_TOO_LARGE')
})
