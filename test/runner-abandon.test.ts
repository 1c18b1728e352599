import t from 'tap'
import type { ExpiryEvent, HandlerContext } from '../src/expiry/handlers.js'
import { closeRedis } from '../src/redis/connection.js'
import { testConfig } from './helpers/app.js'
import { startRedis } from './helpers/redis.js'
import { expiredJob, testRunner } from './helpers/runner.js'
import { testStore, until } from './helpers/worker.js'

/**
 * Runner.abandonShard: the worker can no longer prove its claims in a
 * shard. Runs there are aborted and given back; whether the attempt counts
 * depends on why: a stall of this process counts (a handler that stalls its
 * worker every time ends dead), lost contact with Redis does not.
 */
const redis = await startRedis()
t.teardown(redis.stop)

/** Waits for its signal, then rejects with its reason. */
const waitsForAbort = {
  name: 'waits',
  handle: async (_event: ExpiryEvent, ctx: HandlerContext) => {
    await new Promise((_resolve, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason), { once: true }))
  }
}

for (const countsAttempt of [true, false]) {
  t.test(`abandonShard with countsAttempt=${countsAttempt} gives the run back ${countsAttempt ? 'as a counted attempt' : 'with its attempt'}`, async (t) => {
    const store = testStore(testConfig(redis.url))
    t.teardown(() => closeRedis(store.redis))
    const runner = testRunner(store, { handlers: [waitsForAbort] })
    const job = await expiredJob(store, 'abandoned')
    runner.start(job, 'sweep')
    t.equal(runner.size, 1, 'running')
    runner.abandonAll('contact with Redis lost', countsAttempt)
    const jobKey = store.keys.shard(job.shard).job(job.member)
    t.ok(await until(async () => (await store.redis.hget(jobKey, 'l')) === '', 3000), 'the claim is given back')
    t.equal(await store.redis.hget(jobKey, 'a'), countsAttempt ? '1' : '0', countsAttempt ? 'the attempt counts' : 'the attempt is given back')
    const due = Number(await store.redis.zscore(store.keys.shard(job.shard).jobs, job.member))
    t.ok(due <= Date.now() + 1000, 'due again at once')
    t.ok(await until(() => runner.stats.abandoned === 1, 1000), 'counted as abandoned in the stats')
  })
}
