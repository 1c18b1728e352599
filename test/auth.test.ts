import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { buildApp } from '../src/app.js'
import { ConfigError } from '../src/config.js'
import { readApiTokens, tokenMatches } from '../src/plugins/auth.js'
import { json, testApp, testConfig } from './helpers/app.js'
import { startRedis } from './helpers/redis.js'
import { tempDir } from './helpers/temp.js'

/** Bearer-token auth: /checkout needs a token once tokens are configured; health checks never do. */
const redis = await startRedis()
t.teardown(redis.stop)

const bearer = (token: string) => ({ authorization: `Bearer ${token}` })

t.test('with tokens, /checkout answers 401 without a valid one and stores nothing', async (t) => {
  const { app } = await testApp(redis.url, { API_TOKENS: 'tok-a, tok-b' })
  t.teardown(() => app.close())
  const hold = { id: 'auth-1', ttlMs: 60_000 }

  const none = await app.inject({ method: 'POST', url: '/checkout', ...json(hold) })
  t.equal(none.statusCode, 401)
  t.match(none.json(), { statusCode: 401, code: 'UNAUTHORIZED', error: 'Unauthorized' })
  t.equal(none.headers['www-authenticate'], 'Bearer realm="checkout-expiry"')

  for (const authorization of ['Bearer tok-c', 'Bearer tok-a2', 'Bearer tok', 'Basic dG9rLWE6', 'Bearer', 'tok-a']) {
    const res = await app.inject({ method: 'POST', url: '/checkout', headers: { ...json(hold).headers, authorization }, payload: JSON.stringify(hold) })
    t.equal(res.statusCode, 401, authorization)
    t.match(res.headers['www-authenticate'], /error="invalid_token"/)
  }
  const get = await app.inject({ method: 'GET', url: '/checkout/auth-1', headers: bearer('tok-b') })
  t.equal(get.statusCode, 404, 'a valid token reaches the route: nothing was stored by the refused requests')

  const ok = await app.inject({ method: 'POST', url: '/checkout', headers: { ...json(hold).headers, ...bearer('tok-a') }, payload: JSON.stringify(hold) })
  t.equal(ok.statusCode, 201)
  for (const [method, url] of [['GET', '/checkout/auth-1'], ['PATCH', '/checkout/auth-1'], ['POST', '/checkout/auth-1/complete'], ['DELETE', '/checkout/auth-1']] as const) {
    t.equal((await app.inject({ method, url })).statusCode, 401, `${method} ${url} without a token`)
  }
  const lower = await app.inject({ method: 'GET', url: '/checkout/auth-1', headers: { authorization: 'bearer tok-b' } })
  t.equal(lower.statusCode, 200, 'the scheme is case-insensitive')
})

t.test('health, metrics and docs stay open unless configured', async (t) => {
  const { app } = await testApp(redis.url, { API_TOKENS: 'tok-a' })
  t.teardown(() => app.close())
  t.equal((await app.inject('/healthz')).statusCode, 200)
  t.equal((await app.inject('/readyz')).statusCode, 200)
  t.equal((await app.inject('/docs/json')).statusCode, 200)

  const { app: closed } = await testApp(redis.url, { API_TOKENS: 'tok-a', DOCS_REQUIRE_AUTH: 'true', METRICS_REQUIRE_AUTH: 'true' })
  t.teardown(() => closed.close())
  t.equal((await closed.inject('/healthz')).statusCode, 200, 'health checks never need a token')
  t.equal((await closed.inject('/docs/json')).statusCode, 401)
  t.equal((await closed.inject('/docs')).statusCode, 401)
  t.equal((await closed.inject('/metrics')).statusCode, 401)
  t.equal((await closed.inject({ url: '/docs/json', headers: bearer('tok-a') })).statusCode, 200)
  t.equal((await closed.inject({ url: '/metrics', headers: bearer('tok-a') })).statusCode, 200)
  t.equal((await app.inject('/metrics')).statusCode, 200, 'open by default')
})

t.test('without tokens the API is open and says so once at start', async (t) => {
  const lines: string[] = []
  const { pino } = await import('pino')
  const logger = pino({ level: 'warn' }, { write: (line: string) => { lines.push(line) } })
  const app = await buildApp({ config: testConfig(redis.url), logger })
  t.teardown(() => app.close())
  await app.ready()
  t.equal((await app.inject({ method: 'POST', url: '/checkout', ...json({ id: 'open-1' }) })).statusCode, 201)
  t.equal(lines.filter((l) => l.includes('API_TOKENS is not set')).length, 1)
})

t.test('API_TOKENS_FILE: one token per line, comments skipped; an unreadable file stops the start', async (t) => {
  const dir = tempDir(t, 'tokens')
  const file = join(dir, 'tokens')
  writeFileSync(file, '# rotated 2026-11\ntok-file-1\n\n  tok-file-2  \n')
  t.same(readApiTokens({ API_TOKENS: 'tok-env', API_TOKENS_FILE: file }), ['tok-env', 'tok-file-1', 'tok-file-2'])
  const { app } = await testApp(redis.url, { API_TOKENS_FILE: file })
  t.teardown(() => app.close())
  t.equal((await app.inject({ url: '/checkout/x', headers: bearer('tok-file-2') })).statusCode, 404)
  t.equal((await app.inject({ url: '/checkout/x', headers: bearer('# rotated 2026-11') })).statusCode, 401)

  t.throws(() => readApiTokens({ API_TOKENS: '', API_TOKENS_FILE: join(dir, 'missing') }), ConfigError)
  await t.rejects(buildApp({ config: testConfig(redis.url, { API_TOKENS_FILE: join(dir, 'missing') }) }),
    { name: 'ConfigError', message: /API_TOKENS_FILE.*ENOENT/ })
  t.throws(() => readApiTokens({ API_TOKENS: 'a b', API_TOKENS_FILE: '' }), /visible ASCII/)
})

t.test('the comparison checks the whole token', async (t) => {
  const { createHash } = await import('node:crypto')
  const known = ['alpha', 'beta'].map((s) => createHash('sha256').update(s).digest())
  t.ok(tokenMatches('beta', known))
  t.notOk(tokenMatches('bet', known))
  t.notOk(tokenMatches('betaa', known))
  t.notOk(tokenMatches('', known))
})

t.test('a route that declares no access is guarded; public routes and unmatched requests are not', async (t) => {
  const { default: Fastify } = await import('fastify')
  const { default: auth } = await import('../src/plugins/auth.js')
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(auth, { tokens: ['tok-a'], protectMetrics: false, protectDocs: false })
  app.get('/added-later', async () => ({ ok: true }))
  app.get('/open', { config: { access: 'public' } }, async () => ({ ok: true }))
  t.equal((await app.inject('/added-later')).statusCode, 401, 'guarded by default')
  t.equal((await app.inject({ url: '/added-later', headers: bearer('tok-a') })).statusCode, 200)
  t.equal((await app.inject('/open')).statusCode, 200)
  t.equal((await app.inject('/nowhere')).statusCode, 404, 'no route: a 404, not a 401')
})
