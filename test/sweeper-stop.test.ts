import { pino } from 'pino'
import t from 'tap'
import { Sweeper } from '../src/expiry/sweeper.js'
import { createWorkerMetrics } from '../src/metrics/worker-metrics.js'
import { closeRedis } from '../src/redis/connection.js'
import { createHold } from '../src/store/checkout-store.js'
import { type ExpiryJob } from '../src/store/expiry-jobs.js'
import { testConfig } from './helpers/app.js'
import { startRedis } from './helpers/redis.js'
import { testStore } from './helpers/worker.js'
import { claimAsOwner } from './helpers/own.js'
import { ownShard } from '../src/store/membership.js'

/**
 * A claim that is answered after the worker began to stop hands out jobs
 * nobody will start: the sweeper gives them back at once, attempt returned,
 * so another worker runs them without waiting for a heartbeat to lapse.
 */
const redis = await startRedis()
t.teardown(redis.stop)
const config = testConfig(redis.url, { KEY_SHARDS: '1' })
const store = testStore(config)
t.teardown(() => closeRedis(store.redis))

t.test('jobs claimed while stopping are given back unstarted', async (t) => {
  const claimant = { token: 'stopping', runningMs: 60_000, maxAttempts: 5 }
  const started: ExpiryJob[] = []
  const { epoch } = await ownShard(store, 0, claimant.token)
  const sweeper = new Sweeper({
    store,
    claimant,
    pollMs: 250,
    capacity: () => 10,
    idle: () => started.length === 0,
    refillAt: 1,
    run: (job) => started.push(job),
    epoch: () => epoch,
    notOwner: () => {},
    trusted: () => true,
    log: pino({ level: 'silent' }),
    metrics: createWorkerMetrics()
  })
  await createHold(store, { id: 'late-claim', ttlMs: 1000 })
  await new Promise((resolve) => setTimeout(resolve, 1100))

  // Writes wait while Redis is paused: the claim is sent now and answered after stop() began.
  const admin = redis.client()
  await admin.call('CLIENT', 'PAUSE', '500', 'WRITE')
  sweeper.sweepAll()
  await new Promise((resolve) => setTimeout(resolve, 50))
  await sweeper.stop()

  t.same(started, [], 'nothing started')
  const job = await store.redis.hmget(store.keys.shard(0).job(`1:late-claim`), 'l', 'a')
  t.same(job, ['', '0'], 'no holder, attempt given back')
  const [again] = (await claimAsOwner(store, 0, 10, { ...claimant, token: 'other' }, 1)).jobs
  t.match(again, { id: 'late-claim', attempt: 1 }, 'another worker gets it at once, as a first attempt')
})
