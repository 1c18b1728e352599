import t from 'tap'
import { buildApp } from '../src/app.js'
import { redisDeployment } from '../src/redis/deployment.js'
import { json, testConfig } from './helpers/app.js'
import { makeCerts, startTlsRedis } from './helpers/tls.js'

/**
 * A server certificate no configured CA signed (Heroku Redis's are
 * self-signed): refused at start unless REDIS_TLS_SKIP_VERIFY=true, which
 * the start line then names.
 */
const certs = makeCerts(t)
const redis = await startTlsRedis(t, certs)
const env = { REDIS_TLS_CERT_FILE: certs.clientCert, REDIS_TLS_KEY_FILE: certs.clientKey }
const url = `rediss://127.0.0.1:${redis.port}/0`

t.test('without the switch the certificate is refused', async (t) => {
  await t.rejects(buildApp({ config: testConfig(url, env) }), /not trusted.*REDIS_TLS_CA_FILE/)
})

t.test('with REDIS_TLS_SKIP_VERIFY=true the API serves, and says the certificate is not verified', async (t) => {
  const config = testConfig(url, { ...env, REDIS_TLS_SKIP_VERIFY: 'true' })
  const app = await buildApp({ config })
  t.teardown(() => app.close())
  const res = await app.inject({ method: 'POST', url: '/checkout', ...json({ id: 'self-signed', ttlMs: 60_000 }) })
  t.equal(res.statusCode, 201)
  t.match(redisDeployment(config).describe, /not verified: REDIS_TLS_SKIP_VERIFY/)
})

t.test('the switch needs rediss://', async (t) => {
  t.throws(() => testConfig('redis://127.0.0.1:1/0', { REDIS_TLS_SKIP_VERIFY: 'true' }), /REDIS_TLS_SKIP_VERIFY.*rediss/)
})
