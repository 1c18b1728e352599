import t from 'tap'
import { json, testConfig } from './helpers/app.js'
import { factoryApp, factoryWorker } from './helpers/replica.js'
import { MASTER_NAME, startSentinels } from './helpers/sentinel.js'
import { recorder, until } from './helpers/worker.js'
import { startWriteLoad, untilReplicated } from './helpers/write-load.js'

/**
 * Sentinel: the primary is killed under load. The API (writes answer 503,
 * never 500, while no primary is elected) and the worker continue on the
 * replica the sentinels promote, and every expiry that had reached the
 * replica runs, once.
 */
const MAX_INTERRUPTION_MS = 15_000

t.test('the primary killed under load: API and worker continue on the promoted replica, no replicated expiry lost', async (t) => {
  const { primary, replica, addresses } = await startSentinels(t)
  const config = testConfig('redis://ignored/0', {
    REDIS_SENTINELS: addresses,
    REDIS_SENTINEL_MASTER: MASTER_NAME,
    REDIS_COMMAND_TIMEOUT_MS: '1000',
    REDIS_CONNECT_TIMEOUT_MS: '1000',
    REDIS_RETRY_MAX_DELAY_MS: '500'
  })
  const app = await factoryApp(config)
  t.teardown(() => app.close())
  const { calls, handler } = recorder()
  const worker = await factoryWorker(config, [handler])
  t.teardown(() => worker.close(2000))

  // Holds due a few seconds after the kill, replicated before it.
  const held = Array.from({ length: 20 }, (_, i) => `before-${i}`)
  for (const id of held) {
    t.equal((await app.inject({ method: 'POST', url: '/checkout', ...json({ id, ttlMs: 4000 }) })).statusCode, 201, id)
  }
  t.ok(await untilReplicated(primary, replica), 'the holds reached the replica')
  const r = replica.client()

  const load = startWriteLoad(app, 2, 20)
  const { results } = load
  await new Promise((resolve) => setTimeout(resolve, 300))
  const killedAt = Date.now()
  await primary.kill()
  const resumed = await until(() => results.some((x) => x.at > killedAt && x.status !== 201) &&
    results.at(-1)?.status === 201 && results.at(-2)?.status === 201, MAX_INTERRUPTION_MS + 5000, 50)
  await new Promise((resolve) => setTimeout(resolve, 1000))
  await load.stop()

  t.ok(resumed, 'writes resumed')
  t.match(await r.info('replication'), /role:master/, 'the replica was promoted')
  const statuses = new Set(results.map((x) => x.status))
  t.same([...statuses].filter((s) => s !== 201 && s !== 503), [], `only 201, and 503 while no primary answers (${[...statuses].join(', ')})`)
  const failed = results.filter((x) => x.at > killedAt && x.status !== 201)
  const interruptionMs = Math.max(...failed.map((x) => x.at)) - killedAt
  t.ok(interruptionMs < MAX_INTERRUPTION_MS, `writes interrupted for ${interruptionMs} ms (${failed.length} answers 503)`)
  t.ok(results.filter((x) => x.at > killedAt + interruptionMs).every((x) => x.status === 201), 'all 201 since')

  t.ok(await until(() => held.every((id) => calls.some((c) => c.id === id)), 10_000), 'every replicated expiry ran on the promoted replica')
  t.equal(calls.filter((c) => held.includes(c.id)).length, held.length, 'each once')
  t.ok(await until(() => worker.readiness().ready, 5000), 'the worker is ready, subscribed on the new primary')
  // Before the teardown stops the servers: a stopping worker gives its claims back to Redis.
  await Promise.all([worker.close(2000), app.close()])
})
