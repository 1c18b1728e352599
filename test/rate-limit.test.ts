import type { AddressInfo } from 'node:net'
import t from 'tap'
import { json, testApp } from './helpers/app.js'
import { rawRequest } from './helpers/raw-http.js'
import { startRedis } from './helpers/redis.js'

/** The optional rate limit: per client, shared by API replicas through Redis, off by default. */
const redis = await startRedis()
t.teardown(redis.stop)

t.test('over the limit: 429 with Retry-After, counted across two replicas', async (t) => {
  const env = { RATE_LIMIT_MAX: '3', RATE_LIMIT_WINDOW_MS: '60000' }
  const { app: one, config } = await testApp(redis.url, env)
  t.teardown(() => one.close())
  // A second replica of the same deployment: same prefix, its own process state.
  const { app: two } = await testApp(redis.url, { ...env, KEY_PREFIX: config.KEY_PREFIX })
  t.teardown(() => two.close())

  const statuses = []
  for (const app of [one, two, one, two]) statuses.push((await app.inject({ url: '/checkout/rl-1' })).statusCode)
  t.same(statuses, [404, 404, 404, 429], 'the fourth request in the window is refused, whichever replica gets it')

  const refused = await two.inject({ method: 'POST', url: '/checkout', ...json({ id: 'rl-2' }) })
  t.equal(refused.statusCode, 429)
  t.match(refused.json(), { statusCode: 429, code: 'RATE_LIMITED', error: 'Too Many Requests', message: /retry in \d+ s/ })
  t.ok(Number(refused.headers['retry-after']) > 0 && Number(refused.headers['retry-after']) <= 60, 'Retry-After in seconds')
  t.equal((await one.inject({ url: '/checkout/rl-2', headers: { authorization: 'Bearer x' } })).statusCode, 429,
    'without API_TOKENS a client is its address: an invented bearer string gets no budget of its own')
  t.equal((await one.inject({ url: '/checkout/rl-2', remoteAddress: '127.0.0.2' })).statusCode, 404, 'another address has its own budget')
  t.equal((await one.inject({ url: '/checkout/rl-2' })).statusCode, 429)
  t.equal((await two.inject({ url: '/checkout/rl-2' })).statusCode, 429)
  t.equal((await one.inject('/healthz')).statusCode, 200, 'health checks are never limited')
  t.equal((await one.inject('/docs/json')).statusCode, 200)

  const keys = await redis.client().keys(`${config.KEY_PREFIX}rl:*`)
  t.same(keys.map((k) => k.slice(config.KEY_PREFIX.length)).sort(), ['rl:ip:127.0.0.1', 'rl:ip:127.0.0.2'], 'one counter per address, none per bearer string')
})

t.test('with tokens: a valid token is its own client; a wrong or missing one counts against the address, 401s included', async (t) => {
  const { app, config } = await testApp(redis.url, { API_TOKENS: 'rl-good', METRICS_REQUIRE_AUTH: 'true', RATE_LIMIT_MAX: '5', RATE_LIMIT_WINDOW_MS: '60000' })
  t.teardown(() => app.close())
  const statuses = []
  // Token guessing from one address: a new invented token each time.
  for (let i = 0; i < 6; i++) statuses.push((await app.inject({ url: '/checkout/rl-3', headers: { authorization: `Bearer guess-${i}` } })).statusCode)
  t.same(statuses, [401, 401, 401, 401, 401, 429], 'refused requests count; the sixth guess is refused by the limit')
  t.equal((await app.inject('/checkout/rl-3')).statusCode, 429, 'no token: the same address budget')
  t.equal((await app.inject('/metrics')).statusCode, 429, 'a protected /metrics counts against it too')
  t.equal((await app.inject({ url: '/checkout/rl-3', headers: { authorization: 'Bearer rl-good' } })).statusCode, 404, 'a valid token has its own budget')
  t.equal((await app.inject({ url: '/metrics', headers: { authorization: 'Bearer rl-good' } })).statusCode, 200)
  t.equal((await app.inject('/healthz')).statusCode, 200, 'health checks are never limited')

  const keys = await redis.client().keys(`${config.KEY_PREFIX}rl:*`)
  t.same(keys.map((k) => k.slice(config.KEY_PREFIX.length).replace(/[0-9a-f]{32}$/, '<hash>')).sort(), ['rl:ip:127.0.0.1', 'rl:t:<hash>'],
    'one counter for the address and one for the valid token; none for the guesses')
})

t.test('every spelling of a route counts against the same budget (raw HTTP, no client normalisation)', async (t) => {
  const { app } = await testApp(redis.url, { API_TOKENS: 'rl-good', RATE_LIMIT_MAX: '3', RATE_LIMIT_WINDOW_MS: '60000' })
  t.teardown(() => app.close())
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as AddressInfo
  const headers = { Authorization: 'Bearer rl-good' }
  const statuses = []
  for (const target of ['/%63heckout/rl-4', '/checkou%74/rl-4', 'http://x/checkout/rl-4', '/checkout/rl-4']) {
    statuses.push(await rawRequest(port, { method: 'GET', target, headers }))
  }
  t.same(statuses, [404, 404, 404, 429], 'three spellings of GET /checkout/:id use the budget up')
  const anonymous = []
  for (const target of ['/%63heckout/rl-5', 'http://x/checkout/rl-5', '/checkou%74/rl-5', '/checkout/rl-5']) {
    anonymous.push(await rawRequest(port, { method: 'GET', target }))
  }
  t.same(anonymous, [401, 401, 401, 429], 'the same without a token, against the address')
})

t.test('off by default', async (t) => {
  const { app } = await testApp(redis.url)
  t.teardown(() => app.close())
  for (let i = 0; i < 30; i++) t.equal((await app.inject({ url: '/checkout/rl-off' })).statusCode, 404)
  t.equal((await app.inject({ url: '/checkout/rl-off' })).headers['x-ratelimit-limit'], undefined)
})
