import t from 'tap'
import { json, testConfig } from './helpers/app.js'
import { factoryApp, factoryWorker } from './helpers/replica.js'
import { makeCerts, startTlsCluster } from './helpers/tls.js'
import { recorder, until } from './helpers/worker.js'

/**
 * A TLS-only Redis Cluster: the TLS options of REDIS_URL and
 * REDIS_TLS_CA_FILE reach every node the cluster announces (ioredis takes
 * no TLS from node addresses), the startup node is reached by its name
 * rather than the address it resolves to (the certificates name `localhost`,
 * not 127.0.0.1: ioredis' dnsLookup), the nodes by the names they announce,
 * and the worker's per-master subscribers use TLS too.
 */
t.test('rediss:// and REDIS_TLS_CA_FILE on a TLS cluster: API writes on every master, the worker runs the expiries', async (t) => {
  const certs = makeCerts(t, { namesOnly: true })
  const ports = await startTlsCluster(t, certs)
  const config = testConfig('rediss://unused:1/0', {
    REDIS_CLUSTER_NODES: `localhost:${ports[0] ?? 0}`,
    REDIS_TLS_CA_FILE: certs.ca
  })
  const app = await factoryApp(config)
  t.teardown(() => app.close())
  const { calls, handler } = recorder()
  const worker = await factoryWorker(config, [handler])
  t.teardown(() => worker.close(2000))

  const ids = Array.from({ length: 12 }, (_, i) => `tls-cluster-${i}`)
  for (const id of ids) {
    t.equal((await app.inject({ method: 'POST', url: '/checkout', ...json({ id, ttlMs: 1000 }) })).statusCode, 201, id)
    t.equal((await app.inject({ method: 'GET', url: `/checkout/${id}` })).statusCode, 200)
  }
  t.ok(await until(() => ids.every((id) => calls.some((c) => c.id === id)), 10_000), 'every expiry ran')
  t.equal(calls.length, ids.length, 'each once')
  await Promise.all([worker.close(2000), app.close()])
})
