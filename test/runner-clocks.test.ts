import { performance } from 'node:perf_hooks'
import t from 'tap'
import type { ExpiryEvent, HandlerContext } from '../src/expiry/handlers.js'
import { createWorkerMetrics } from '../src/metrics/worker-metrics.js'
import { closeRedis } from '../src/redis/connection.js'
import { getCheckout } from '../src/store/checkout-store.js'
import { replayDeadLetter } from '../src/store/dead-letters.js'
import { serverTime } from '../src/store/direct.js'
import { testConfig } from './helpers/app.js'
import { startRedis } from './helpers/redis.js'
import { claimFor, claimantOf, expiredJob, testRunner } from './helpers/runner.js'
import { testStore, until } from './helpers/worker.js'

/**
 * One clock per purpose: the handler timeout on the monotonic clock, the
 * lateness of a run on the Redis server clock its deadline was written
 * with, and a retry's backoff from the attempts of the current set (a
 * replayed dead letter starts a fresh set).
 */
const redis = await startRedis()
t.teardown(redis.stop)
const store = testStore(testConfig(redis.url))
t.teardown(() => closeRedis(store.redis))

/** Waits on the monotonic clock: these tests step Date.now. */
async function within (ms: number, check: () => boolean): Promise<boolean> {
  const end = performance.now() + ms
  while (performance.now() < end && !check()) await new Promise((resolve) => setTimeout(resolve, 10))
  return check()
}

t.test('the handler timeout holds when the wall clock steps back', async (t) => {
  let reason: string | undefined
  const handler = {
    name: 'slow',
    handle: async (_e: ExpiryEvent, ctx: HandlerContext) => {
      await new Promise((_resolve, reject) => ctx.signal.addEventListener('abort', () => {
        reason = (ctx.signal.reason as Error).message
        reject(ctx.signal.reason)
      }, { once: true }))
    }
  }
  const runner = testRunner(store, { handlers: [handler], handlerTimeoutMs: 200 })
  const realNow = Date.now
  t.teardown(() => { Date.now = realNow })
  runner.start({ shard: 0, member: '1:clock-step', id: 'clock-step', generation: 1, deadline: 0, expiredAt: 0, attempt: 1 }, 'sweep')
  Date.now = () => realNow() - 3_600_000
  t.ok(await within(3000, () => reason !== undefined), 'aborted although the wall clock went back an hour')
  Date.now = realNow
  t.match(reason, /timed out after 200 ms/)
})

t.test('lateness is measured on the server clock the deadline was written with', async (t) => {
  const metrics = createWorkerMetrics()
  // The server's clock is 3 s behind this process's: a deadline 100 ms ago on it is 3.1 s ago locally.
  const serverNow = () => Date.now() - 3000
  const runner = testRunner(store, { handlers: [{ name: 'ok', handle: () => {} }], metrics, serverNow })
  runner.start({ shard: 0, member: '1:skewed', id: 'skewed', generation: 1, deadline: serverNow() - 100, expiredAt: 0, attempt: 1 }, 'sweep')
  await until(() => runner.size === 0, 1000)
  const lateness = await metrics.registry.getSingleMetric('checkout_expiry_lateness_seconds')?.get()
  const sum = lateness?.values.find((v) => (v as { metricName?: string }).metricName === 'checkout_expiry_lateness_seconds_sum' && v.labels.found_by === 'sweep')
  t.ok(sum, 'lateness observed')
  t.ok((sum?.value ?? Infinity) < 1, `late by ${sum?.value} s, not by the clock skew`)
})

t.test('after a dead-letter replay, backoff counts from the attempts since the replay', async (t) => {
  const claimant = claimantOf('runner-test', 2)
  const runner = testRunner(store, {
    handlers: [{ name: 'failing', handle: () => { throw new Error('still broken') } }],
    maxAttempts: 2,
    backoffMs: 200
  })
  const id = 'replayed'
  runner.start(await expiredJob(store, id, claimant), 'sweep')
  t.ok(await until(async () => (await getCheckout(store, id)).outcome === 'retrying', 3000), 'attempt 1 failed')
  runner.start(await claimFor(store, id, claimant), 'retry')
  t.ok(await until(async () => (await getCheckout(store, id)).outcome === 'dead', 3000), 'attempt 2 failed: dead')
  const shard = store.keys.shardOf(id)
  const member = (await store.redis.zrange(store.keys.shard(shard).dead, '0', '-1'))[0] as string
  t.ok(await replayDeadLetter(store, shard, member), 'replayed')
  const job = await claimFor(store, id, claimant)
  t.equal(job.attempt, 3, 'attempt numbers go on')
  runner.start(job, 'retry')
  t.ok(await until(async () => (await getCheckout(store, id)).outcome === 'retrying', 3000), 'the first attempt after the replay failed')
  const due = Number(await store.redis.zscore(store.keys.shard(shard).jobs, member))
  const delay = due - await serverTime(store)
  // The first retry of a set waits 100..200 ms; the third would wait 400..800 ms.
  t.ok(delay <= 250, `retry in ${delay} ms: the first of the new set`)
})
