import fc from 'fast-check'
import type { FastifyInstance } from 'fastify'
import t from 'tap'
import { getCheckout } from '../src/store/checkout-store.js'
import { testApp } from './helpers/app.js'
import { startRedis } from './helpers/redis.js'

/**
 * Random ids, bodies, headers and content types at every route: never a
 * 5xx, always the common error body for an error, and a rejected request
 * never stores or changes a hold. Once against an open API, once with
 * tokens and a rate limit.
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
