import t from 'tap'
import { buildApp } from '../src/app.js'
import { createLogger } from '../src/logger.js'
import { pathForLog } from '../src/plugins/access-log.js'
import { json, testConfig } from './helpers/app.js'
import { startRedis } from './helpers/redis.js'

/** Request ids on every line, the caller's X-Request-Id honoured, secrets and payloads never logged. */
const redis = await startRedis()
t.teardown(redis.stop)

const lines: Array<Record<string, unknown>> = []
const logger = createLogger('debug', 'checkout-api', { write: (line: string) => { lines.push(JSON.parse(line) as Record<string, unknown>) } })
const app = await buildApp({ config: testConfig(redis.url, { API_TOKENS: 'secret-token-1' }), logger })
t.teardown(() => app.close())
await app.ready()

const linesOf = (reqId: string) => lines.filter((l) => l.reqId === reqId)

t.test("the caller's X-Request-Id is on every line of the request and in the response", async (t) => {
  const res = await app.inject({
    method: 'POST',
    url: '/checkout',
    headers: { ...json({}).headers, 'x-request-id': 'trace-abc-123', authorization: 'Bearer secret-token-1' },
    payload: JSON.stringify({ id: 'log-1', payload: { email: 'jane@example.com' } })
  })
  t.equal(res.statusCode, 201)
  t.equal(res.headers['x-request-id'], 'trace-abc-123')
  const mine = linesOf('trace-abc-123')
  t.ok(mine.some((l) => l.msg === 'request answered' && l.statusCode === 201 && l.route === '/checkout'), 'the access line carries it, with route and status')
  const all = JSON.stringify(lines)
  t.notOk(all.includes('secret-token-1'), 'the token is never logged')
  t.notOk(all.includes('jane@example.com'), 'the payload is never logged')
})

t.test('secrets in the query string never reach a log line; the access line has the path without it', async (t) => {
  // Fastify's own request lines (disableRequestLogging off) would carry the raw URL: this fails then too.
  const cases = [
    { url: '/checkout/log-q1?access_token=secret-query-1&x=1', id: 'trace-q1', path: '/checkout/log-q1', route: '/checkout/:id', status: 404 },
    { url: '/checkout/%E0%A4%A?token=secret-query-2', id: 'trace-q2', path: '/checkout/%E0%A4%A', route: undefined, status: 400 },
    { url: '/nowhere?api_key=secret-query-3', id: 'trace-q3', path: '/nowhere', route: undefined, status: 404 },
    { url: '/checkout/log-q4#frag?secret-query-4', id: 'trace-q4', path: '/checkout/log-q4', route: '/checkout/:id', status: 404 }
  ]
  for (const c of cases) {
    const res = await app.inject({ url: c.url, headers: { authorization: 'Bearer secret-token-1', 'x-request-id': c.id } })
    t.equal(res.statusCode, c.status, c.url)
    t.ok(linesOf(c.id).length >= 1, `${c.url} is logged`)
    // A URL the router cannot decode is refused before any hook: no access line, only 'request rejected'.
    if (c.route === undefined && c.status === 400) continue
    const access = linesOf(c.id).filter((l) => l.msg === 'request answered')
    t.equal(access.length, 1, `one access line for ${c.url}`)
    t.match(access[0], { method: 'GET', path: c.path, statusCode: c.status, route: c.route })
  }
  t.notMatch(JSON.stringify(lines), /secret-query-/, 'no query-string secret in any line')
})

t.test('pathForLog keeps the path only: no query, no fragment, no scheme or userinfo of an absolute-form target', async (t) => {
  t.equal(pathForLog('/checkout/a1?access_token=s'), '/checkout/a1')
  t.equal(pathForLog('/checkout/a1#x?y'), '/checkout/a1')
  t.equal(pathForLog('http://user:pass@host:3000/checkout/a1?t=s'), '/checkout/a1')
  t.equal(pathForLog('HTTP://host'), '/')
  t.equal(pathForLog('*'), '*')
})

t.test('a missing or unsafe X-Request-Id is replaced by a generated one', async (t) => {
  for (const incoming of [undefined, 'a'.repeat(500), 'bad id\twith controls', '']) {
    const res = await app.inject({ url: '/healthz', headers: incoming === undefined ? {} : { 'x-request-id': incoming } })
    const id = String(res.headers['x-request-id'])
    t.match(id, /^[0-9a-f-]{36}$/, `replaced: ${String(incoming).slice(0, 20)}`)
    t.ok(linesOf(id).length >= 1)
  }
})

t.test('rejected requests log the code, not the body', async (t) => {
  const res = await app.inject({
    method: 'POST',
    url: '/checkout',
    headers: { ...json({}).headers, authorization: 'Bearer secret-token-1', 'x-request-id': 'trace-bad' },
    payload: JSON.stringify({ id: 'log-2', payload: { card: '4242424242424242' }, extra: 1 })
  })
  t.equal(res.statusCode, 400)
  t.ok(linesOf('trace-bad').some((l) => l.code === 'VALIDATION_FAILED'))
  t.notOk(JSON.stringify(lines).includes('4242424242424242'))
})

t.test('the redaction itself: nested payloads and authorization headers', async (t) => {
  const captured: string[] = []
  const log = createLogger('info', 'x', { write: (l: string) => { captured.push(l) } })
  log.info({ payload: { a: 'pii-1' }, event: { payload: 'pii-2' }, req: { headers: { authorization: 'Bearer pii-3' } } }, 'm')
  t.notMatch(captured.join(''), /pii-/)
})
