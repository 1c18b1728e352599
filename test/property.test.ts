import type { AddressInfo } from 'node:net'
import fc from 'fast-check'
import type { FastifyInstance } from 'fastify'
import t from 'tap'
import { getCheckout } from '../src/store/checkout-store.js'
import { testApp } from './helpers/app.js'
import { rawRequest } from './helpers/raw-http.js'
import { startRedis } from './helpers/redis.js'

/**
 * Random ids, bodies, headers and content types at every route: never a
 * 5xx, always the common error body for an error, and a rejected request
 * never stores or changes a hold. Once against an open API, once with
 * tokens and a rate limit; then protected routes spelled many ways without
 * a valid token.
 */
const redis = await startRedis()
t.teardown(redis.stop)
const TOKEN = 'prop-token-1'

const validId = fc.stringMatching(/^[A-Za-z0-9._:-]{1,12}$/)
const anyId = fc.oneof(
  validId,
  fc.string({ maxLength: 140 }),
  fc.string({ unit: 'binary', maxLength: 20 }),
  fc.constantFrom('a'.repeat(128), 'b'.repeat(129), '%E0%A4%A', '..', '%00', 'a/b', '')
)
const jsonBody = fc.oneof(
  fc.record({
    id: fc.oneof(validId, fc.jsonValue()),
    ttlMs: fc.oneof(fc.integer({ min: -10, max: 100_000_000 }), fc.jsonValue()),
    expire: fc.oneof(fc.integer({ min: -5, max: 100_000 }), fc.jsonValue()),
    payload: fc.oneof(fc.object(), fc.jsonValue()),
    extra: fc.jsonValue()
  }, { requiredKeys: [] }).map((o) => JSON.stringify(o)),
  fc.jsonValue().map((v) => JSON.stringify(v)),
  fc.string({ maxLength: 200 }),
  fc.constant('')
)
const contentType = fc.oneof(
  fc.constantFrom('application/json', 'application/json; charset=utf-8', 'text/plain', 'application/x-www-form-urlencoded',
    'multipart/form-data; boundary=x', 'application/xml', 'APPLICATION/JSON'),
  fc.stringMatching(/^[a-z]{1,8}\/[a-z+.-]{1,12}$/),
  fc.constant(undefined)
)
const printable = fc.stringMatching(/^[\x20-\x7e]{0,300}$/)
const request = fc.record({
  route: fc.constantFrom('POST /checkout', 'GET /checkout/:id', 'PATCH /checkout/:id', 'POST /checkout/:id/complete',
    'DELETE /checkout/:id', 'GET /healthz', 'GET /readyz', 'PUT /checkout/:id', 'GET /:id',
    'GET /docs/json', 'GET /docs/:id', 'GET /metrics', 'GET /metrics/:id'),
  id: anyId,
  encode: fc.boolean(),
  body: fc.option(jsonBody, { nil: undefined }),
  contentType,
  idempotencyKey: fc.option(printable, { nil: undefined }),
  accept: fc.option(printable, { nil: undefined }),
  authorization: fc.option(fc.oneof(
    fc.constant(`Bearer ${TOKEN}`), fc.constant(`bearer ${TOKEN} `), printable, printable.map((p) => `Bearer ${p}`)
  ), { nil: undefined }),
  requestId: fc.option(printable, { nil: undefined })
})

const heldAs = async (app: FastifyInstance, id: string) =>
  await getCheckout(app.store, id).then((v) => `${v.generation}:${v.status}:${v.expiresAt}`, () => 'none')

const variants: Array<[string, Record<string, string>]> = [
  ['an open API', {}],
  ['tokens, a rate limit, protected docs and metrics', {
    API_TOKENS: TOKEN, RATE_LIMIT_MAX: '250', RATE_LIMIT_WINDOW_MS: '60000', DOCS_REQUIRE_AUTH: 'true', METRICS_REQUIRE_AUTH: 'true'
  }]
]

for (const [name, env] of variants) {
  t.test(`${name}: no 5xx, the common error body, nothing stored by a rejected request`, async (t) => {
    const { app } = await testApp(redis.url, env)
    t.teardown(() => app.close())
    await property(app)
    t.pass('300 random requests')
  })
}

/**
 * Protected routes spelled every way a router may still match them (each
 * letter maybe percent-encoded, in either hex case; `//`, `%2F` and dot
 * segments between segments; absolute-form; a trailing slash, query or
 * fragment), sent as raw HTTP/1.1 without a valid token: never 2xx.
 */
const PROTECTED = [['POST', '/checkout'], ['GET', '/checkout/:id'], ['PATCH', '/checkout/:id'], ['DELETE', '/checkout/:id'],
  ['POST', '/checkout/:id/complete'], ['GET', '/metrics'], ['GET', '/docs'], ['GET', '/docs/'], ['GET', '/docs/json'],
  ['GET', '/docs/yaml'], ['GET', '/docs/static/swagger-initializer.js'], ['GET', '/docs/static/swagger-ui.css']] satisfies Array<[string, string]>
const MAX_SEGMENTS = 4
const MAX_CHARS = 40
const spelled = fc.record({
  route: fc.constantFrom(...PROTECTED),
  // Per character of the path: 0 as is, 1 %XX, 2 %xx.
  encodings: fc.array(fc.integer({ min: 0, max: 2 }), { minLength: MAX_CHARS, maxLength: MAX_CHARS }),
  separators: fc.array(fc.constantFrom('/', '/', '/', '//', '%2F', '%2f'), { minLength: MAX_SEGMENTS, maxLength: MAX_SEGMENTS }),
  dots: fc.array(fc.constantFrom('', '', '', '/.', '/x/..', '/%2e', '/x/%2E%2E', '/%2e%2e'), { minLength: MAX_SEGMENTS, maxLength: MAX_SEGMENTS }),
  absolute: fc.constantFrom('', '', 'http://x', 'http://127.0.0.1:1', 'HTTP://X'),
  suffix: fc.constantFrom('', '', '/', '?', '?access_token=x', '#f', ';x', '%20'),
  method: fc.constantFrom('route', 'route', 'HEAD', 'OPTIONS'),
  authorization: fc.option(fc.oneof(
    fc.constant('Bearer'), printable.map((p) => `Bearer ${p}`), fc.constant(`Basic ${Buffer.from(`${TOKEN}:`).toString('base64')}`),
    fc.constant(`Bearer ${TOKEN}x`), fc.constant(`Bearer ${TOKEN.toUpperCase()}`), fc.constant(`Token ${TOKEN}`), fc.constant(TOKEN)
  ), { nil: undefined })
})

function spell (path: string, r: { encodings: number[], separators: string[], dots: string[], absolute: string, suffix: string }): string {
  let at = 0
  const encode = (c: string) => {
    const how = r.encodings[at++ % MAX_CHARS]
    const hex = c.charCodeAt(0).toString(16)
    return how === 1 ? `%${hex.toUpperCase()}` : how === 2 ? `%${hex.toLowerCase()}` : c
  }
  const segments = path.split('/').slice(1)
  const body = segments.map((seg, i) => `${r.dots[i] ?? ''}${r.separators[i] ?? '/'}${[...seg].map(encode).join('')}`).join('')
  return `${r.absolute}${body}${r.suffix}`
}

t.test('protected routes in any spelling, without a valid token: never 2xx (raw HTTP)', async (t) => {
  const { app } = await testApp(redis.url, { API_TOKENS: TOKEN, DOCS_REQUIRE_AUTH: 'true', METRICS_REQUIRE_AUTH: 'true' })
  t.teardown(() => app.close())
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as AddressInfo
  let n = 0
  await fc.assert(fc.asyncProperty(spelled, async (r) => {
    fc.pre(/^Bearer +(\S+) *$/i.exec(r.authorization ?? '')?.[1] !== TOKEN)
    const [routeMethod, pattern] = r.route
    const id = `prop-sp-${++n}`
    // A pending hold behind every :id, so a request that got through would answer 2xx.
    if (pattern.includes(':id')) {
      const created = await app.inject({ method: 'POST', url: '/checkout', headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` }, payload: JSON.stringify({ id }) })
      if (created.statusCode !== 201) throw new Error(`could not create ${id}: ${created.statusCode}`)
    }
    const method = r.method === 'route' ? routeMethod : r.method
    const target = spell(pattern.replace(':id', id), r)
    const body = method === 'POST' && pattern === '/checkout' ? JSON.stringify({ id: `${id}-new` }) : method === 'PATCH' ? '{"ttlMs":120000}' : undefined
    const headers: Record<string, string> = body === undefined ? {} : { 'Content-Type': 'application/json' }
    if (r.authorization !== undefined) headers.Authorization = r.authorization
    const status = await rawRequest(port, { method, target, headers, ...(body === undefined ? {} : { body }) })
    if (status === 0 || (status >= 200 && status < 300)) throw new Error(`${method} ${target} (authorization ${JSON.stringify(r.authorization)}) answered ${status}`)
  }), { numRuns: 300, seed: Number(process.env.PROPERTY_SEED ?? Date.now() % 2 ** 31) })
  t.pass('300 spellings refused')
})

async function property (app: FastifyInstance): Promise<void> {
  await fc.assert(fc.asyncProperty(request, async (r) => {
    const [method, path] = r.route.split(' ') as [string, string]
    const url = path.replace(':id', r.encode ? encodeURIComponent(r.id) : r.id.replace(/[^\x21-\x7e]/g, ''))
    const headers: Record<string, string> = {}
    if (r.contentType !== undefined) headers['content-type'] = r.contentType
    if (r.idempotencyKey !== undefined) headers['idempotency-key'] = r.idempotencyKey
    if (r.accept !== undefined) headers.accept = r.accept
    if (r.authorization !== undefined) headers.authorization = r.authorization
    if (r.requestId !== undefined) headers['x-request-id'] = r.requestId
    let target = r.id
    if (r.route === 'POST /checkout' && r.body) {
      try { target = String((JSON.parse(r.body) as { id?: unknown }).id ?? r.id) } catch { /* not JSON */ }
    }
    const before = /^[A-Za-z0-9._:-]{1,128}$/.test(target) ? await heldAs(app, target) : undefined

    const res = await app.inject({ method: method as 'GET', url, headers, ...(r.body === undefined ? {} : { payload: r.body }) })
      .catch((err: unknown) => {
        // A path the test client itself cannot send (e.g. "//" makes it a host): no request reached the server.
        if ((err as { code?: string }).code === 'ERR_INVALID_URL') return undefined
        throw err
      })
    fc.pre(res !== undefined)

    if (res.statusCode >= 500) throw new Error(`${res.statusCode} for ${JSON.stringify(r)}: ${res.body}`)
    if (res.statusCode >= 400) {
      const body = res.json() as Record<string, unknown>
      if (body.statusCode !== res.statusCode || typeof body.code !== 'string' || typeof body.error !== 'string' || typeof body.message !== 'string') {
        throw new Error(`not the common error body for ${JSON.stringify(r)}: ${res.body}`)
      }
      if (before !== undefined && await heldAs(app, target) !== before) throw new Error(`a rejected request changed ${target}: ${JSON.stringify(r)}`)
    }
    if (typeof res.headers['x-request-id'] !== 'string') throw new Error(`no X-Request-Id for ${JSON.stringify(r)}`)
  }), { numRuns: 300, seed: Number(process.env.PROPERTY_SEED ?? Date.now() % 2 ** 31) })
}
