import t from 'tap'
import { closeRedis } from '../src/redis/connection.js'
import { serverTime } from '../src/store/direct.js'
import { failRun } from '../src/store/expiry-jobs.js'
import { testConfig } from './helpers/app.js'
import { startRedis } from './helpers/redis.js'
import { claimFor, claimantOf, expiredJob } from './helpers/runner.js'
import { testStore } from './helpers/worker.js'

/**
 * The retry delay fail-6.lua schedules: exponential in the attempts of the
 * current set, half fixed and half random ("equal jitter"), at most an hour.
 */
const redis = await startRedis()
t.teardown(redis.stop)
const store = testStore(testConfig(redis.url))
t.teardown(() => closeRedis(store.redis))
const claimant = claimantOf('backoff', 1000)

t.test('retry delay doubles per attempt, with half of it random, capped at one hour', async (t) => {
  const id = 'backoff'
  let job = await expiredJob(store, id, claimant)
  const want: Array<[number, number, number]> = [
    // attempt, jitter, delay
    [1, 0, 500], [2, 1, 2000], [3, 0, 2000], [4, 0.5, 6000]
  ]
  for (const [attempt, jitter, delay] of want) {
    t.equal(job.attempt, attempt)
    const before = await serverTime(store)
    t.same(await failRun(store, job, claimant.token, 'boom', 1000, 1000, jitter), { outcome: 'retry', retryInMs: delay }, `attempt ${attempt}, jitter ${jitter}: ${delay} ms`)
    const due = Number(await store.redis.zscore(store.keys.shard(job.shard).jobs, job.member))
    t.ok(due >= before + delay && due <= before + delay + 1000, 'due after that delay')
    // Due now, so the test claims the next attempt without waiting.
    await store.redis.zadd(store.keys.shard(job.shard).jobs, 0, job.member)
    job = await claimFor(store, id, claimant)
  }
  // Far on: capped at an hour.
  await store.redis.hset(store.keys.shard(job.shard).job(job.member), 'a', 40)
  const late = { ...job, attempt: 40 }
  t.same(await failRun(store, late, claimant.token, 'boom', 1000, 1000, 1), { outcome: 'retry', retryInMs: 3_600_000 }, 'capped at an hour')
})
