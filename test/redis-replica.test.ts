import t, { type Test } from 'tap'
import { json, testConfig } from './helpers/app.js'
import { factoryApp, spawnRedis, waitForLink } from './helpers/replica.js'
import { until } from './helpers/worker.js'

/**
 * The API against a primary with a replica: REDIS_WAIT_REPLICAS answers a
 * write only once a replica has it (503 when none does in time, and the
 * retry with the same Idempotency-Key succeeds once one has);
 * REDIS_READ_FROM=replica serves GET from the replica (stale by the
 * replication lag) and from the primary while the replica is away.
 */
async function primaryAndReplica (t: Test) {
  const primary = await spawnRedis(t, [])
  // DEBUG SLEEP stalls the replica, so it cannot acknowledge for a while.
  const replica = await spawnRedis(t, ['--replicaof', '127.0.0.1', String(primary.port), '--enable-debug-command', 'yes'])
  await waitForLink(replica)
  return { primary, replica }
}

t.test('REDIS_WAIT_REPLICAS=1: acknowledged only once the replica has the write; 503 while it cannot', async (t) => {
  const { primary, replica } = await primaryAndReplica(t)
  const config = testConfig(`redis://127.0.0.1:${primary.port}/0`, {
    REDIS_WAIT_REPLICAS: '1', REDIS_WAIT_TIMEOUT_MS: '300', REDIS_COMMAND_TIMEOUT_MS: '1000'
  })
  const app = await factoryApp(config)
  t.teardown(() => app.close())
  const r = replica.client()
  const create = async (id: string) => await app.inject({
    method: 'POST', url: '/checkout', headers: { 'content-type': 'application/json', 'idempotency-key': `key-${id}` }, payload: JSON.stringify({ id, ttlMs: 60_000 })
  })
  // The idempotency record: written with the hold in every key format (format 3 keeps a pending hold in a shared bucket).
  const orderKey = async (id: string) => (await primary.client().keys(`${config.KEY_PREFIX}*idem:${id}:*`))[0] ?? 'none'

  t.equal((await create('w-1')).statusCode, 201, 'replica up: 201')
  t.equal(await r.exists(await orderKey('w-1')), 1, 'the replica had it when the API answered')

  const sleeping = replica.client().call('DEBUG', 'SLEEP', '1.5')
  await new Promise((resolve) => setTimeout(resolve, 50))
  const started = Date.now()
  const refused = await create('w-2')
  t.equal(refused.statusCode, 503, 'no replica acknowledged within REDIS_WAIT_TIMEOUT_MS: 503')
  t.match(refused.json(), { code: 'REDIS_UNAVAILABLE' })
  t.ok(Date.now() - started < 1000, `answered after the WAIT timeout (${Date.now() - started} ms)`)
  t.equal(await primary.client().exists(await orderKey('w-2')), 1, 'the write happened on the primary')
  await sleeping
  const retried = await create('w-2')
  t.equal(retried.statusCode, 201, 'the retry with the same key succeeds once the replica has it')
  t.equal(retried.headers['idempotent-replayed'], 'true')
  const complete = await app.inject({ method: 'POST', url: '/checkout/w-2/complete' })
  t.equal(complete.statusCode, 200, 'complete waits too, and succeeds')
})

t.test('REDIS_READ_FROM=replica: GET reads the replica, stale while it lags, the primary while it is away', async (t) => {
  const { primary, replica } = await primaryAndReplica(t)
  const config = testConfig(`redis://127.0.0.1:${primary.port}/0`, {
    REDIS_READ_FROM: 'replica', REDIS_REPLICA_URL: `redis://127.0.0.1:${replica.port}/0`, REDIS_COMMAND_TIMEOUT_MS: '500'
  })
  const app = await factoryApp(config)
  t.teardown(() => app.close())
  const get = async (id: string) => (await app.inject({ method: 'GET', url: `/checkout/${id}` })).statusCode

  t.equal((await app.inject({ method: 'POST', url: '/checkout', ...json({ id: 'r-1', ttlMs: 60_000 }) })).statusCode, 201)
  const r = replica.client()
  t.ok(await until(async () => await get('r-1') === 200, 2000), 'replicated: read from the replica')

  // Cut replication: the replica keeps its data but sees no new writes (the stale-read window, made long).
  await r.replicaof('127.0.0.1', '1')
  t.equal((await app.inject({ method: 'POST', url: '/checkout', ...json({ id: 'r-2', ttlMs: 60_000 }) })).statusCode, 201, 'writes go to the primary')
  t.equal(await get('r-2'), 404, 'the replica has not seen it: the read came from the replica')

  await replica.kill()
  t.equal(await get('r-2'), 200, 'replica away: the read goes to the primary')
})
