import { pino } from 'pino'
import t from 'tap'
import { startHousekeeping } from '../src/expiry/housekeeping.js'
import { closeRedis } from '../src/redis/connection.js'
import { createHold } from '../src/store/checkout-store.js'
import { countDeadLetters } from '../src/store/dead-letters.js'
import { failJob } from '../src/store/expiry-jobs.js'
import { readStats } from '../src/store/stats.js'
import { testConfig } from './helpers/app.js'
import { startRedis } from './helpers/redis.js'
import { testStore, until } from './helpers/worker.js'
import { claimAsOwner } from './helpers/own.js'

/** The worker's chores: dead letters past their retention go, found counts reach <prefix>stats once each. */
const redis = await startRedis()
t.teardown(redis.stop)
const silent = pino({ level: 'silent' })
const lease = { token: 'hk-worker', runningMs: 10_000, maxAttempts: 1 }

t.test('dead letters older than the retention are removed with their job hashes; younger ones stay', async (t) => {
  const store = testStore(testConfig(redis.url, { KEY_SHARDS: '2' }))
  t.teardown(() => closeRedis(store.redis))
  let seq = 0
  const deadLetter = async (id: string) => {
    await createHold(store, { id, ttlMs: 1000 })
    await new Promise((resolve) => setTimeout(resolve, 1050))
    for (let shard = 0; shard < store.keys.shards; shard++) {
      for (const job of (await claimAsOwner(store, shard, 100, lease, ++seq)).jobs) await failJob(store, job, lease.token, 'boom', 1, 0)
    }
  }
  await deadLetter('hk-old')
  await new Promise((resolve) => setTimeout(resolve, 1500))
  await deadLetter('hk-young')
  t.equal(await countDeadLetters(store), 2)

  const chores = startHousekeeping({
    store, log: silent, found: () => ({ event: 0, sweep: 0 }), stats: () => ({ handled: 0, retried: 0, dead: 0, abandoned: 0, claimLost: 0, running: 0 }),
    deadLetterRetentionMs: 1200, purgeEveryMs: 100
  })
  t.ok(await until(async () => await countDeadLetters(store) === 1, 5000), 'the old one goes')
  await chores.stop()
  const jobKeys = await store.redis.keys(`${store.keys.prefix}*job:*`)
  t.same(jobKeys.map((k) => k.replace(/^.*job:\d+:/, '')), ['hk-young'], 'only the young letter keeps its job hash')
})

t.test('found counts are flushed as increments, so restarts and several workers add up', async (t) => {
  const store = testStore(testConfig(redis.url))
  t.teardown(() => closeRedis(store.redis))
  const found = { event: 0, sweep: 0 }
  const options = {
    store, log: silent, found: () => found, stats: () => ({ handled: 0, retried: 0, dead: 0, abandoned: 0, claimLost: 0, running: 0 }),
    deadLetterRetentionMs: 60_000, flushEveryMs: 50
  }
  const a = startHousekeeping(options)
  found.sweep = 7
  found.event = 1
  t.ok(await until(async () => (await readStats(store)).found.sweep === 7, 3000))
  found.sweep = 10
  await a.stop()
  t.same((await readStats(store)).found, { event: 1, sweep: 10 }, 'the last counts are flushed at stop, nothing twice')

  const other = { event: 2, sweep: 3 }
  const b = startHousekeeping({ ...options, found: () => other })
  await b.stop()
  t.same((await readStats(store)).found, { event: 3, sweep: 13 }, "a second worker's counts add to the first's")
})
