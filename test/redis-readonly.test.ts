import t from 'tap'
import { json, testConfig } from './helpers/app.js'
import { factoryApp, factoryWorker, startEndpoint, startPrimaryAndReplica } from './helpers/replica.js'
import { recorder, until } from './helpers/worker.js'
import { startWriteLoad, untilReplicated } from './helpers/write-load.js'

/**
 * A managed Redis with one primary endpoint fails over by moving the name:
 * open connections stay on the old primary, now a replica, and every write
 * answers READONLY. The API and the worker must reconnect by themselves and
 * land on the new primary: 503s while it lasts, never a 500, and a bounded
 * window.
 */
const LOAD_CLIENTS = 4
/** What the window may cost at most: a reconnect or two (backoff 100, 200 ms) and the resync of the old primary. */
const MAX_WINDOW_MS = 2000

t.test('a replica promoted under load, the old primary demoted: writes resume within a bounded window, no 500', async (t) => {
  const { primary, replica } = await startPrimaryAndReplica(t)
  const endpoint = await startEndpoint(t, primary.port)
  const config = testConfig(`redis://127.0.0.1:${endpoint.port}/0`, { REDIS_COMMAND_TIMEOUT_MS: '1000' })
  const app = await factoryApp(config)
  t.teardown(() => app.close())
  const { calls, handler } = recorder()
  const worker = await factoryWorker(config, [handler])
  t.teardown(() => worker.close(2000))

  // Holds that expire after the failover; replicated before it.
  const held: string[] = []
  for (let i = 0; i < 20; i++) {
    const res = await app.inject({ method: 'POST', url: '/checkout', ...json({ id: `before-${i}`, ttlMs: 2500 }) })
    t.equal(res.statusCode, 201)
    held.push(`before-${i}`)
  }
  t.ok(await untilReplicated(primary, replica), 'the holds reached the replica')
  const [p, r] = [primary.client(), replica.client()]

  const load = startWriteLoad(app, LOAD_CLIENTS, 10)
  const { results } = load
  await new Promise((resolve) => setTimeout(resolve, 500))

  const failoverAt = Date.now()
  await r.replicaof('NO', 'ONE')
  await p.replicaof('127.0.0.1', String(replica.port))
  endpoint.pointAt(replica.port)
  await new Promise((resolve) => setTimeout(resolve, 3000))
  await load.stop()

  const statuses = new Set(results.map((x) => x.status))
  t.notOk(statuses.has(500), 'no 500')
  t.same([...statuses].filter((s) => s !== 201 && s !== 503), [], 'only 201, and 503 while it lasts')
  const failed = results.filter((x) => x.status !== 201)
  t.ok(failed.length > 0, `the old primary refused writes (${failed.length} answers 503)`)
  const windowMs = Math.max(0, ...failed.map((x) => x.at)) - failoverAt
  t.ok(windowMs < MAX_WINDOW_MS, `writes resumed ${windowMs} ms after the failover (bound ${MAX_WINDOW_MS} ms)`)
  const after = results.filter((x) => x.at > failoverAt + MAX_WINDOW_MS)
  t.ok(after.length > 50 && after.every((x) => x.status === 201), `${after.length} creates after the window, all 201`)
  t.equal(await r.exists(`${config.KEY_PREFIX}layout`), 1, 'the new primary has the data')

  t.ok(await until(() => held.every((id) => calls.some((c) => c.id === id)), 8000), 'the worker ran every replicated expiry on the new primary')
  t.equal(calls.filter((c) => held.includes(c.id)).length, held.length, 'each once')
  t.ok(await until(() => worker.readiness().ready, 3000), 'the worker is ready on the new primary')
  // Before the teardown stops the servers: a stopping worker gives its claims back to Redis.
  await Promise.all([worker.close(2000), app.close()])
})
