import t from 'tap'
import { ConfigError, loadConfig, parseRedisUrl } from '../src/config.js'

t.test('defaults', async (t) => {
  const c = loadConfig({})
  t.equal(c.PORT, 3000)
  t.equal(c.REDIS_URL, 'redis://127.0.0.1:6379/0')
  t.equal(c.CHECKOUT_DEFAULT_TTL_MS, 15 * 60_000)
  t.equal(c.CHECKOUT_MAX_TTL_MS, 24 * 3_600_000)
  t.equal(c.CHECKOUT_RESULT_RETENTION_MS, 24 * 3_600_000)
  t.equal(c.KEY_PREFIX, 'ce:')
  t.equal(c.LOG_LEVEL, 'info')
  t.equal(c.EXPIRY_HANDLERS, 'log')
})

t.test('parses numbers and keeps strings', async (t) => {
  const c = loadConfig({ PORT: '8080', HOST: '0.0.0.0', CHECKOUT_DEFAULT_TTL_MS: '20000', LOG_LEVEL: 'debug' })
  t.equal(c.PORT, 8080)
  t.equal(c.HOST, '0.0.0.0')
  t.equal(c.CHECKOUT_DEFAULT_TTL_MS, 20000)
  t.equal(c.LOG_LEVEL, 'debug')
})

t.test('a bad value names the variable and what is allowed', async (t) => {
  const cases: Array<[Record<string, string>, RegExp]> = [
    [{ PORT: 'abc' }, /^Invalid PORT="abc": expected an integer from 0 to 65535$/],
    [{ PORT: '70000' }, /^Invalid PORT="70000": expected an integer/],
    [{ PORT: '1.5' }, /^Invalid PORT="1.5"/],
    [{ LOG_LEVEL: 'loud' }, /^Invalid LOG_LEVEL="loud": expected one of fatal, error, warn, info, debug, trace, silent$/],
    [{ REDIS_URL: 'http://x' }, /^Invalid REDIS_URL="http:\/\/x": expected a string matching/],
    [{ REDIS_URL: 'redis://host:6379/abc' }, /^Invalid REDIS_URL: database "abc" is not a number$/],
    [{ KEY_PREFIX: 'has space' }, /^Invalid KEY_PREFIX/],
    [{ CHECKOUT_MAX_TTL_MS: '999' }, /^Invalid CHECKOUT_MAX_TTL_MS="999"/],
    [{ CHECKOUT_DEFAULT_TTL_MS: '90000', CHECKOUT_MAX_TTL_MS: '60000' }, /^Invalid CHECKOUT_DEFAULT_TTL_MS=90000: expected at most CHECKOUT_MAX_TTL_MS/],
    [{ EXPIRY_LEASE_MS: '1000', EXPIRY_HEARTBEAT_MS: '400' }, /^Invalid EXPIRY_HEARTBEAT_MS=400: expected at most a third of EXPIRY_LEASE_MS \(1000\)/]
  ]
  for (const [env, message] of cases) {
    t.throws(() => loadConfig(env), { name: 'ConfigError', message }, JSON.stringify(env))
  }
  t.ok(new ConfigError('x') instanceof Error)
})

t.test('REDIS_URL forms, including Heroku-style rediss with user and password', async (t) => {
  t.same(parseRedisUrl('redis://127.0.0.1:6379/0'), { url: 'redis://127.0.0.1:6379/0', db: 0, tls: false })
  t.same(parseRedisUrl('redis://localhost:6379'), { url: 'redis://localhost:6379', db: 0, tls: false })
  t.same(parseRedisUrl('rediss://user:p%40ss@example.com:25061/3'), { url: 'rediss://user:p%40ss@example.com:25061/3', db: 3, tls: true })
  t.throws(() => parseRedisUrl('redis://'), /REDIS_URL/)
  t.equal(loadConfig({ REDIS_URL: 'rediss://default:secret@h.example:6380/2' }).REDIS_URL, 'rediss://default:secret@h.example:6380/2')
})
