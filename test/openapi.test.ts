import { Validator } from '@seriousme/openapi-schema-validator'
import type { InjectOptions } from 'fastify'
import t from 'tap'
import { Errors } from '../src/errors.js'
import { testApp } from './helpers/app.js'
import { servedRoutes } from './helpers/raw-http.js'
import { startRedis } from './helpers/redis.js'

/**
 * The OpenAPI document is valid and describes the app as it behaves: every
 * route the router serves, and for each route exactly the statuses it
 * answers. The statuses are not listed here: every route gets the same
 * battery of requests (no token, an unknown or invalid id, an ended hold, a
 * bad, foreign or oversized body, a reused Idempotency-Key, a used-up rate
 * limit, Redis down), and what it answered is compared with the document,
 * both ways. Only 500 is documented without being provoked.
 */
const redis = await startRedis({ restartable: true })
t.teardown(redis.stop)
const TOKEN = 'doc-token-1'
const LIMITED = 'doc-token-2'
const MAX = 600
// The strictest configuration: every status a plugin can add is possible.
const { app } = await testApp(redis.url, {
  API_TOKENS: `${TOKEN},${LIMITED}`, METRICS_REQUIRE_AUTH: 'true', RATE_LIMIT_MAX: String(MAX), RATE_LIMIT_WINDOW_MS: '3600000'
})
t.teardown(() => app.close())

type Doc = { openapi: string, paths: Record<string, Record<string, { responses: Record<string, unknown>, security?: unknown }>> }
const doc = (await app.inject({ url: '/docs/json' })).json() as Doc

/** Every served route but HEAD (answered by the GET route) and the document's own pages. */
const routes = servedRoutes(app.printRoutes({ commonPrefix: false }))
  .filter((r) => !r.startsWith('HEAD ') && !r.includes(' /docs'))
const docKey = (route: string) => {
  const [method, path] = route.split(' ') as [string, string]
  return [path.replace(/:(\w+)/g, '{$1}'), method.toLowerCase()] as const
}

let serial = 0
const fresh = () => `doc-${++serial}`
const asClient = (token: string | undefined, opts: InjectOptions): InjectOptions =>
  ({ ...opts, headers: { ...(token === undefined ? {} : { authorization: `Bearer ${token}` }), ...opts.headers } })
const jsonBody = (body: unknown, headers: Record<string, string> = {}) =>
  ({ headers: { 'content-type': 'application/json', ...headers }, payload: JSON.stringify(body) })

async function hold (id: string, status: 'pending' | 'cancelled' | 'completed' = 'pending'): Promise<void> {
  const created = await app.inject(asClient(TOKEN, { method: 'POST', url: '/checkout', ...jsonBody({ id }) }))
  if (created.statusCode !== 201) throw new Error(`setup: ${created.statusCode} ${created.body}`)
  if (status === 'cancelled') await app.inject(asClient(TOKEN, { method: 'DELETE', url: `/checkout/${id}` }))
  if (status === 'completed') await app.inject(asClient(TOKEN, { method: 'POST', url: `/checkout/${id}/complete` }))
}

/** An order id for `route`: a pending hold when the route takes one in its path. */
async function target (route: string): Promise<string> {
  const id = fresh()
  if (route.includes(':id')) await hold(id)
  return id
}

/** A request to `route` that the route should accept, for the given order id. */
function validRequest (route: string, id: string, variant = 0): InjectOptions {
  const [verb, path] = route.split(' ') as [string, string]
  const method = verb as NonNullable<InjectOptions['method']>
  const url = path.replace(':id', id)
  if (route === 'POST /checkout') return { method, url, ...jsonBody({ id, ttlMs: 60_000 + variant }) }
  if (verb === 'PATCH') return { method, url, ...jsonBody({ ttlMs: 60_000 + variant }) }
  return { method, url }
}

type Provocation = (route: string) => Promise<InjectOptions | undefined>
const provocations: Record<string, Provocation> = {
  valid: async (route) => asClient(TOKEN, validRequest(route, await target(route))),
  'no token': async (route) => validRequest(route, fresh()),
  'wrong token': async (route) => asClient('not-a-token', validRequest(route, fresh())),
  'unknown id': async (route) => asClient(TOKEN, validRequest(route, fresh())),
  'invalid id': async (route) => asClient(TOKEN, validRequest(route, 'bad%20id!')),
  'cancelled hold': async (route) => { const id = fresh(); await hold(id, 'cancelled'); return asClient(TOKEN, validRequest(route, id)) },
  'completed hold': async (route) => { const id = fresh(); await hold(id, 'completed'); return asClient(TOKEN, validRequest(route, id)) },
  'existing hold': async (route) => { const id = fresh(); await hold(id); return asClient(TOKEN, validRequest(route, id)) },
  'invalid body': async (route) => asClient(TOKEN, { ...validRequest(route, await target(route)), ...jsonBody({ bogus: 1 }) }),
  'text body': async (route) => asClient(TOKEN, { ...validRequest(route, await target(route)), headers: { 'content-type': 'text/plain' }, payload: 'hello' }),
  'large body': async (route) => asClient(TOKEN, { ...validRequest(route, await target(route)), ...jsonBody({ pad: 'x'.repeat(70 * 1024) }) }),
  'reused Idempotency-Key': async (route) => {
    const id = await target(route)
    // The key first used for another request on the same order.
    const first = route === 'PATCH /checkout/:id' ? validRequest(route, id, 1) : route === 'POST /checkout' ? validRequest(route, id, 1) : validRequest('PATCH /checkout/:id', id)
    await app.inject(asClient(TOKEN, { ...first, headers: { ...first.headers, 'idempotency-key': `k-${id}` } }))
    const second = validRequest(route, id, 2)
    return asClient(TOKEN, { ...second, headers: { ...second.headers, 'idempotency-key': `k-${id}` } })
  },
  'rate limit used up': async (route) => asClient(LIMITED, validRequest(route, await target(route)))
}

const answered = new Map<string, Set<number>>(routes.map((r) => [r, new Set()]))
async function record (route: string, opts: InjectOptions | undefined): Promise<void> {
  if (opts === undefined) return
  answered.get(route)?.add((await app.inject(opts)).statusCode)
}

t.test('GET /docs/json is a valid OpenAPI 3 document', async (t) => {
  t.match(doc.openapi, /^3\./)
  const result = await new Validator().validate(doc)
  t.same(result.errors, undefined, 'valid')
  t.equal(result.valid, true)
})

t.test('GET /docs serves the browsable UI', async (t) => {
  const res = await app.inject('/docs/')
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /text\/html/)
})

t.test('every route the router serves is documented, and nothing else', async (t) => {
  t.ok(routes.length >= 8, `${routes.length} routes served`)
  const documented = Object.entries(doc.paths).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path.replace(/\{(\w+)\}/g, ':$1')}`))
  t.same(documented.sort(), [...routes].sort())
})

t.test('each route answers exactly the statuses the document lists (500 aside)', async (t) => {
  // The limited token's budget, used up on a route it counts on.
  for (let i = 0; i < MAX; i++) await app.inject(asClient(LIMITED, { url: '/checkout/none' }))
  for (const route of routes) {
    for (const provoke of Object.values(provocations)) await record(route, await provoke(route))
  }
  // Last: Redis away.
  await redis.kill()
  for (const route of routes) await record(route, asClient(TOKEN, validRequest(route, fresh())))

  for (const route of routes) {
    const [path, method] = docKey(route)
    const documented = new Set(Object.keys(doc.paths[path]?.[method]?.responses ?? {}).map(Number))
    const seen = [...(answered.get(route) ?? [])].sort()
    t.same(seen.filter((s) => !documented.has(s)), [], `${route}: every status it answered is documented (answered ${seen.join(', ')})`)
    t.same([...documented].filter((s) => s !== 500 && !seen.includes(s)).sort(), [], `${route}: every documented status was answered`)
  }
})

t.test('the document names every error code, with examples and the bearer scheme', async (t) => {
  const text = JSON.stringify(doc)
  // 405, 408, 414 and 431 come from the HTTP layer or the router before any route; the README lists them.
  for (const code of Object.keys(Errors).filter((c) => !['URL_TOO_LONG', 'HEADERS_TOO_LARGE', 'REQUEST_TIMEOUT', 'METHOD_NOT_ALLOWED'].includes(c))) {
    t.match(text, `"${code}"`, `${code} is named`)
  }
  t.match(JSON.stringify(doc.paths['/checkout']?.post), /order-1001/, 'with examples')
  t.match(JSON.stringify(doc.paths['/checkout']?.post?.responses['409']), /CHECKOUT_EXISTS/, 'a status lists its codes')
  for (const route of routes.filter((r) => r.includes('/checkout') || r.includes('/metrics'))) {
    const [path, method] = docKey(route)
    t.same(doc.paths[path]?.[method]?.security, [{ bearerAuth: [] }], `${route} names the bearer scheme`)
  }
})

