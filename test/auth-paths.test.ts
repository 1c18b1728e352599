import type { AddressInfo } from 'node:net'
import t from 'tap'
import { json, testApp } from './helpers/app.js'
import { rawRequest, servedRoutes, spellings } from './helpers/raw-http.js'
import { startRedis } from './helpers/redis.js'

/**
 * A route needs a token because of what it is, not how its path is spelled.
 * Raw HTTP/1.1 over a socket, so every spelling reaches the server as
 * written: no answer without a valid token is ever 2xx, on any protected
 * route, in any spelling, with any method.
 */
const redis = await startRedis()
t.teardown(redis.stop)
const TOKEN = 'raw-token-1'
const { app } = await testApp(redis.url, { API_TOKENS: TOKEN, METRICS_REQUIRE_AUTH: 'true', DOCS_REQUIRE_AUTH: 'true' })
t.teardown(() => app.close())
await app.listen({ port: 0, host: '127.0.0.1' })
const { port } = app.server.address() as AddressInfo

interface Probe { route: string, method: string, path: string, body?: (id: string) => string }
const probes: Probe[] = [
  { route: 'POST /checkout', method: 'POST', path: '/checkout', body: (id) => JSON.stringify({ id, ttlMs: 60_000 }) },
  { route: 'GET /checkout/:id', method: 'GET', path: '/checkout/:id' },
  { route: 'HEAD /checkout/:id', method: 'HEAD', path: '/checkout/:id' },
  { route: 'PATCH /checkout/:id', method: 'PATCH', path: '/checkout/:id', body: () => JSON.stringify({ ttlMs: 120_000 }) },
  { route: 'DELETE /checkout/:id', method: 'DELETE', path: '/checkout/:id' },
  { route: 'POST /checkout/:id/complete', method: 'POST', path: '/checkout/:id/complete' },
  { route: 'GET /metrics', method: 'GET', path: '/metrics' },
  { route: 'HEAD /metrics', method: 'HEAD', path: '/metrics' },
  ...['', '/', '/json', '/yaml', '/static/index.html', '/static/swagger-initializer.js'].flatMap((p) => [
    { route: `GET /docs${p}`, method: 'GET', path: `/docs${p}` },
    { route: `HEAD /docs${p}`, method: 'HEAD', path: `/docs${p}` }
  ]),
  { route: 'GET /docs/*', method: 'GET', path: '/docs/static/swagger-ui.css' },
  { route: 'HEAD /docs/*', method: 'HEAD', path: '/docs/static/swagger-ui.js' }
]
const OPEN = ['GET /healthz', 'HEAD /healthz', 'GET /readyz', 'HEAD /readyz']

let holds = 0
/** A fresh pending hold per request, so a request that got through would answer 2xx. */
async function freshHold (): Promise<string> {
  const id = `raw-${++holds}`
  const res = await app.inject({ method: 'POST', url: '/checkout', headers: { ...json({}).headers, authorization: `Bearer ${TOKEN}` }, payload: JSON.stringify({ id, ttlMs: 60_000 }) })
  if (res.statusCode !== 201) throw new Error(`could not create ${id}: ${res.statusCode}`)
  return id
}

async function send (probe: Probe, spell: (path: string) => string, headers: Record<string, string>): Promise<{ target: string, status: number }> {
  const id = probe.path.includes(':id') || probe.body !== undefined ? await freshHold() : ''
  // POST /checkout creates: its body names an id nobody holds yet.
  const bodyId = probe.path === '/checkout' ? `${id}-new` : id
  const target = spell(probe.path.replace(':id', id))
  const body = probe.body?.(bodyId)
  const status = await rawRequest(port, {
    method: probe.method,
    target,
    headers: body === undefined ? headers : { ...headers, 'Content-Type': 'application/json' },
    ...(body === undefined ? {} : { body })
  })
  return { target, status }
}

t.test('every route the app serves is either probed here or open on purpose', async (t) => {
  const served = servedRoutes(app.printRoutes({ commonPrefix: false }))
  t.same(served, [...probes.map((p) => p.route), ...OPEN].sort())
})

t.test('with a valid token each probe reaches its route (so a bypass would show as 2xx)', async (t) => {
  for (const probe of probes) {
    const { target, status } = await send(probe, (p) => p, { Authorization: `Bearer ${TOKEN}` })
    t.ok(status >= 200 && status < 400, `${probe.method} ${target}: ${status}`)
  }
})

t.test('without a valid token no spelling of a protected route answers 2xx', async (t) => {
  const leaks: string[] = []
  let sent = 0
  for (const probe of probes) {
    const variants = spellings(probe.path)
    for (let i = 0; i < variants.length; i++) {
      const spell = (p: string) => spellings(p)[i] ?? p
      for (const headers of i < 6 ? [{}, { Authorization: 'Bearer wrong' }] : [{}] as Array<Record<string, string>>) {
        const { target, status } = await send(probe, spell, headers)
        sent++
        if (status === 0 || (status >= 200 && status < 300)) leaks.push(`${probe.method} ${target} → ${status}`)
      }
    }
    // OPTIONS and an unknown method on the same path: 404 or 405, never the route's answer.
    for (const method of ['OPTIONS', 'PUT']) {
      const { target, status } = await send({ ...probe, method, body: undefined }, (p) => p, {})
      sent++
      if (status >= 200 && status < 300) leaks.push(`${method} ${target} → ${status}`)
    }
  }
  t.same(leaks, [], `${sent} requests without a valid token, none answered 2xx`)
})
