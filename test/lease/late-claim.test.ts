import { pino } from 'pino'
import { performance } from 'node:perf_hooks'
import t from 'tap'
import { Heartbeat } from '../../src/expiry/heartbeat.js'
import { Sweeper } from '../../src/expiry/sweeper.js'
import { createWorkerMetrics } from '../../src/metrics/worker-metrics.js'
import { closeRedis } from '../../src/redis/connection.js'
import { createHold } from '../../src/store/checkout-store.js'
import type { ExpiryJob } from '../../src/store/expiry-jobs.js'
import { ownShard } from '../../src/store/membership.js'
import { testConfig } from '../helpers/app.js'
import { startRedis } from '../helpers/redis.js'
import { testStore, until } from '../helpers/worker.js'

/**
 * A claim answered so late that less than a heartbeat interval of the lease
 * is left (here 1.5 s after it was sent, while no heartbeat was confirmed
 * either; lease 2 s, heartbeat every 0.6 s): runs started now
 * would be aborted at once, so its jobs are given back unstarted, attempt
 * returned.
 */
const redis = await startRedis()
t.teardown(redis.stop)
const config = testConfig(redis.url, { KEY_SHARDS: '1' })
const store = testStore(config)
t.teardown(() => closeRedis(store.redis))
const log = pino({ level: 'silent' })

t.test('a claim answered 1.5 s after it was sent (lease 2 s, heartbeat 0.6 s) is given back unstarted', async (t) => {
  const claimant = { token: 'late', runningMs: 60_000, maxAttempts: 5 }
  const answeredAfter: number[] = []
  let sentAt = 0
  const heartbeat = new Heartbeat({ store, claimant, leaseMs: 2000, intervalMs: 600, log, onLost: () => {}, onMembers: () => {} })
  t.teardown(() => heartbeat.stop())
  const { epoch } = await ownShard(store, 0, claimant.token)
  heartbeat.start()
  t.ok(await until(async () => heartbeat.trusted(), 3000, 20), 'the heartbeat is confirmed')
  const started: ExpiryJob[] = []
  const sweeper = new Sweeper({
    store,
    claimant,
    pollMs: 60_000,
    // One claim only: the job given back must not be claimed again by this sweeper before the test reads it.
    capacity: () => answeredAfter.length === 0 ? 10 : 0,
    idle: () => started.length === 0,
    refillAt: 1,
    run: (job) => started.push(job),
    epoch: () => epoch,
    notOwner: () => {},
    trusted: () => {
      answeredAfter.push(performance.now() - sentAt)
      return heartbeat.trusted()
    },
    log,
    metrics: createWorkerMetrics()
  })
  t.teardown(() => sweeper.stop())
  await createHold(store, { id: 'late-claim', ttlMs: 1000 })
  await new Promise((resolve) => setTimeout(resolve, 1100))

  // Writes wait 1.5 s: the claim is sent now and answered with 0.2 s of its lease left, less than
  // a heartbeat interval (and before the worker's 2 s command timeout).
  await redis.client().call('CLIENT', 'PAUSE', '1500', 'WRITE')
  sentAt = performance.now()
  sweeper.sweepAll()
  const job = store.keys.shard(0).job('1:late-claim')
  t.ok(await until(async () => (await store.redis.hget(job, 'l')) === '' && (await store.redis.hget(job, 'a')) === '0', 8000, 50),
    'given back: no holder, attempt returned')
  t.same(started, [], 'nothing started')
  t.comment(`the claim was answered ${Math.round(answeredAfter[0] ?? NaN)} ms after it was sent`)
})
