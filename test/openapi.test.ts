import AjvCompiler from '@fastify/ajv-compiler'
import { Validator } from '@seriousme/openapi-schema-validator'
import type { InjectOptions } from 'fastify'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import { Errors } from '../src/errors.js'
import { testApp } from './helpers/app.js'
import { servedRoutes, spellings } from './helpers/raw-http.js'
import { rawExchange, requestBytes, type RawResponse } from './helpers/raw-response.js'
import { startRedis } from './helpers/redis.js'

/**
 * The OpenAPI document is valid and describes the app as it behaves: every
 * route the router serves, and for each route exactly the statuses it
 * answers, each body valid against the schema the document gives for that
 * status. The statuses are not listed here: every route gets the same
 * battery of requests (no token, an unknown or invalid id, an ended hold, a
 * bad, foreign or oversized body, a reused Idempotency-Key, a used-up rate
 * limit, Redis down), then over a socket what no HTTP client sends
 * (oversized headers, an over-long URL or id, bytes that are not HTTP,
 * headers that never finish, the path spelled every way the router might
 * take it); every answer is validated against the document, and what each
 * route answered is compared with the document, both ways. Only 500 is
 * documented without being provoked.
 */
const redis = await startRedis({ restartable: true })
t.teardown(redis.stop)
const TOKEN = 'doc-token-1'
const LIMITED = 'doc-token-2'
const MAX = 1000
// The strictest configuration: every status a plugin can add is possible.
const { app } = await testApp(redis.url, {
  API_TOKENS: `${TOKEN},${LIMITED}`, METRICS_REQUIRE_AUTH: 'true', RATE_LIMIT_MAX: String(MAX), RATE_LIMIT_WINDOW_MS: '3600000'
})
t.teardown(() => app.close())
await app.listen({ port: 0, host: '127.0.0.1' })
const port = (app.server.address() as AddressInfo).port

type Schema = Record<string, unknown>
type Operation = { responses: Record<string, { content?: Record<string, { schema?: Schema }> }>, security?: unknown }
type Doc = { openapi: string, paths: Record<string, Record<string, Operation>>, components: { schemas: Record<string, Schema> } }
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

/**
 * The response validator: Ajv as Fastify builds it, nothing coerced,
 * removed or defaulted, knowing OpenAPI's annotation keywords.
 */
const compile = AjvCompiler()({}, {
  customOptions: { coerceTypes: false, removeAdditional: false, useDefaults: false, allErrors: true },
  onCreate: (ajv) => { ajv.addVocabulary(['example', 'xml', 'externalDocs', 'discriminator']) }
})
const compiled = new Map<Schema, (data: unknown) => boolean>()
function validate (schema: Schema, data: unknown): string | undefined {
  let check = compiled.get(schema)
  if (check === undefined) {
    check = compile({ schema, method: 'GET', url: '/', httpPart: 'body' }) as (data: unknown) => boolean
    compiled.set(schema, check)
  }
  return check(data) ? undefined : JSON.stringify((check as unknown as { errors?: unknown }).errors)
}

/** Answers no operation owns: a path or method the API does not have. */
const unowned = new Set(['ROUTE_NOT_FOUND', 'METHOD_NOT_ALLOWED'])

type Answer = Pick<RawResponse, 'statusCode' | 'headers' | 'body'>
const answered = new Map<string, Set<number>>(routes.map((r) => [r, new Set()]))
const mismatches: string[] = []
let checked = 0

/** Checks one answer to a request aimed at `route` against the document, and notes its status. */
function check (route: string, label: string, res: Answer): void {
  checked++
  const where = `${route} (${label}): ${res.statusCode}`
  const type = String(res.headers['content-type'] ?? '').split(';', 1)[0] ?? ''
  let body: unknown = res.body
  if (type === 'application/json') {
    try { body = JSON.parse(res.body) } catch { mismatches.push(`${where} body is not JSON: ${res.body.slice(0, 80)}`); return }
  }
  const code = (body as { code?: unknown } | null)?.code
  if (res.statusCode >= 400) {
    // The error list ties each code to one status.
    const E = typeof code === 'string' ? Errors[code as keyof typeof Errors] : undefined
    if (E === undefined || new E('x', 1, 1).statusCode !== res.statusCode) mismatches.push(`${where} with code ${String(code)}`)
  }
  let schema: Schema | undefined
  if (typeof code === 'string' && unowned.has(code)) {
    schema = doc.components.schemas.Error
  } else {
    answered.get(route)?.add(res.statusCode)
    const [path, method] = docKey(route)
    const documented = doc.paths[path]?.[method]?.responses[String(res.statusCode)]
    if (documented === undefined) { mismatches.push(`${where} is not documented`); return }
    schema = documented.content?.[type]?.schema
    if (schema === undefined) { mismatches.push(`${where} ${type} has no schema (${Object.keys(documented.content ?? {}).join(', ')})`); return }
  }
  if (schema === undefined) { mismatches.push(`${where}: no Error schema`); return }
  const invalid = validate(schema, body)
  if (invalid !== undefined) mismatches.push(`${where} ${res.body.slice(0, 120)} does not match the document: ${invalid}`)
}

async function record (route: string, label: string, opts: InjectOptions | undefined): Promise<void> {
  if (opts === undefined) return
  const res = await app.inject(opts)
  check(route, label, { statusCode: res.statusCode, headers: res.headers as Record<string, string>, body: res.body })
}

/** The request `opts` as bytes for a socket, with extra headers. */
function asBytes (opts: InjectOptions, extra: Record<string, string> = {}, target?: string): string {
  const headers = { ...(opts.headers as Record<string, string> | undefined), ...extra }
  const payload = typeof opts.payload === 'string' ? opts.payload : undefined
  return requestBytes(opts.method ?? 'GET', target ?? String(opts.url), headers, payload)
}

/**
 * What reaches the server only over a socket, each for `route`: answered
 * by Node's parser or the router before the route runs.
 */
type RawProvocation = (route: string) => Promise<string | undefined>
const rawProvocations: Record<string, RawProvocation> = {
  'headers over 16 KiB': async (route) => asBytes(asClient(TOKEN, validRequest(route, await target(route))), { 'x-pad': 'p'.repeat(17 * 1024) }),
  'URL over 16 KiB': async (route) => {
    const opts = asClient(TOKEN, validRequest(route, route.includes(':id') ? 'i'.repeat(17 * 1024) : fresh()))
    return asBytes(opts, {}, route.includes(':id') ? String(opts.url) : `${String(opts.url)}?q=${'q'.repeat(17 * 1024)}`)
  },
  'an id over 8 KiB': async (route) => route.includes(':id') ? asBytes(asClient(TOKEN, validRequest(route, 'i'.repeat(9 * 1024)))) : undefined,
  'a bad percent-encoding': async (route) => route.includes(':id') ? asBytes(asClient(TOKEN, validRequest(route, '%E0%A4%A'))) : undefined,
  'not HTTP': async (route) => asBytes(asClient(TOKEN, validRequest(route, fresh())), { 'content-length': 'abc' })
}

/** Headers that never finish: Node answers 408 after its headers timeout (10 s). */
async function stalled (route: string): Promise<Answer> {
  const [method, path] = route.split(' ') as [string, string]
  return await rawExchange(port, `${method} ${path.replace(':id', fresh())} HTTP/1.1\r\nHost: 127.0.0.1\r\n`, 30_000)
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

t.test('each route answers exactly the statuses the document lists (500 aside), each body as the document says', async (t) => {
  // The limited token's budget, used up on a route it counts on.
  for (let i = 0; i < MAX; i++) await app.inject(asClient(LIMITED, { url: '/checkout/none' }))
  // Started first, answered after 10 s: meanwhile the rest runs.
  const slow = routes.map(async (route) => check(route, 'headers never finish', await stalled(route)))
  for (const route of routes) {
    for (const [label, provoke] of Object.entries(provocations)) await record(route, label, await provoke(route))
    for (const [label, provoke] of Object.entries(rawProvocations)) {
      const bytes = await provoke(route)
      if (bytes !== undefined) check(route, label, await rawExchange(port, bytes))
    }
    // The fuzz corpus: the route's path spelled every way a router might take it, with a valid request.
    const id = await target(route)
    const valid = asClient(TOKEN, validRequest(route, id))
    for (const spelled of spellings(String(valid.url))) check(route, `spelled ${spelled}`, await rawExchange(port, asBytes(valid, {}, spelled)))
  }
  await Promise.all(slow)
  // Last: Redis away.
  await redis.kill()
  for (const route of routes) await record(route, 'Redis away', asClient(TOKEN, validRequest(route, fresh())))

  t.ok(checked > 300, `${checked} answers checked against the document`)
  t.same(mismatches, [], 'every answer has a documented status and a body valid against its schema')
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
  for (const code of Object.keys(Errors)) {
    t.match(text, `"${code}"`, `${code} is named`)
  }
  t.match(JSON.stringify(doc.paths['/checkout']?.post), /order-1001/, 'with examples')
  t.match(JSON.stringify(doc.paths['/checkout']?.post?.responses['409']), /CHECKOUT_EXISTS/, 'a status lists its codes')
  for (const route of routes.filter((r) => r.includes('/checkout') || r.includes('/metrics'))) {
    const [path, method] = docKey(route)
    t.same(doc.paths[path]?.[method]?.security, [{ bearerAuth: [] }], `${route} names the bearer scheme`)
  }
})


t.test('a path that leaves the UI\'s files is 404 ROUTE_NOT_FOUND, never a file and never a 403', async (t) => {
  const targets = ['/docs/static/../../package.json', '/docs/static/%2e%2e/%2e%2e/package.json', '/docs/static/..%2f..%2fpackage.json',
    '/docs/static/%2E%2E%2F%2E%2E%2Fpackage.json', '/docs/static/..%5c..%5cpackage.json', '/docs/static/index.css%00']
  for (const target of targets) {
    const res = await rawExchange(port, requestBytes('GET', target))
    t.equal(res.statusCode, 404, target)
    t.match(JSON.parse(res.body), { statusCode: 404, code: 'ROUTE_NOT_FOUND' }, `${target}: a code of the list`)
    t.equal(validate(doc.components.schemas.Error ?? {}, JSON.parse(res.body)), undefined, `${target}: the documented error body`)
    t.notMatch(res.body, /"dependencies"/, `${target}: not the file`)
  }
})

t.test('an over-long id: 400 up to 8 KiB, 414 URL_TOO_LONG beyond, 431 once the request line passes 16 KiB', async (t) => {
  const auth = { authorization: `Bearer ${TOKEN}` }
  for (const [length, status, code] of [[5 * 1024, 400, 'VALIDATION_FAILED'], [9 * 1024, 414, 'URL_TOO_LONG'], [17 * 1024, 431, 'HEADERS_TOO_LARGE']] as const) {
    const res = await rawExchange(port, requestBytes('GET', `/checkout/${'i'.repeat(length)}`, auth))
    t.equal(res.statusCode, status, `${length} characters`)
    t.match(JSON.parse(res.body), { statusCode: status, code }, `${length} characters: ${code}`)
  }
})
