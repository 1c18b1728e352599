import t from 'tap'
import { closeRedis } from '../src/redis/connection.js'
import type { ExpiryJob } from '../src/store/expiry-jobs.js'
import { testConfig } from './helpers/app.js'
import { startRedis } from './helpers/redis.js'
import { testRunner } from './helpers/runner.js'
import { testStore, until } from './helpers/worker.js'

/**
 * The runner runs each claim once: the same claim handed back twice runs
 * once, but the next attempt of an order runs even while the last attempt's
 * run is still leaving the runner (it recorded its outcome; its slot is not
 * free yet). Dropping it left the claim unrun until its safety net passed.
 */
const redis = await startRedis()
t.teardown(redis.stop)
const store = testStore(testConfig(redis.url))
t.teardown(() => closeRedis(store.redis))

t.test('one run per claim: a resent claim is skipped, the next attempt of the same order is not', async (t) => {
  const started: number[] = []
  let release = () => {}
  const blocked = new Promise<void>((resolve) => { release = resolve })
  const runner = testRunner(store, {
    handlers: [{ name: 'blocking', handle: async (event) => { started.push(event.attempt); await blocked } }],
    backoffMs: 10
  })
  const job = (attempt: number): ExpiryJob => ({ shard: 0, member: '1:same-order', id: 'same-order', generation: 1, deadline: 0, expiredAt: 0, attempt })
  runner.start(job(1), 'sweep')
  runner.start(job(1), 'sweep')
  runner.start(job(2), 'retry')
  t.ok(await until(() => started.length === 2, 1000), 'two runs started')
  t.same(started, [1, 2], 'attempt 1 once, and attempt 2 beside it')
  t.equal(runner.size, 2)
  release()
  t.ok(await until(() => runner.size === 0, 2000), 'both finished')
})
