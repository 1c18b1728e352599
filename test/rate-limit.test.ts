import t from 'tap'
import { json, testApp } from './helpers/app.js'
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
  t.equal((await one.inject({ url: '/checkout/rl-2', headers: { authorization: 'Bearer x' } })).statusCode, 404,
    'another client (here: another token) has its own budget')
  t.equal((await one.inject({ url: '/checkout/rl-2' })).statusCode, 429)
  t.equal((await two.inject({ url: '/checkout/rl-2' })).statusCode, 429)
  t.equal((await one.inject('/healthz')).statusCode, 200, 'health checks are never limited')
  t.equal((await one.inject('/docs/json')).statusCode, 200)

  const keys = await redis.client().keys(`${config.KEY_PREFIX}rl:*`)
  t.ok(keys.length >= 1 && keys.every((k) => !k.includes('Bearer') && !k.endsWith(':x')), 'counters under the prefix, no token in a key name')
})

t.test('off by default', async (t) => {
  const { app } = await testApp(redis.url)
  t.teardown(() => app.close())
  for (let i = 0; i < 30; i++) t.equal((await app.inject({ url: '/checkout/rl-off' })).statusCode, 404)
  t.equal((await app.inject({ url: '/checkout/rl-off' })).headers['x-ratelimit-limit'], undefined)
})
