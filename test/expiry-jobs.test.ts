import t from 'tap'
import { closeRedis } from '../src/redis/connection.js'
import { createHold } from '../src/store/checkout-store.js'
import { ackJob, claimDue, nextDue } from '../src/store/expiry-jobs.js'
import { testConfig } from './helpers/app.js'
import { startRedis } from './helpers/redis.js'
import { testStore } from './helpers/worker.js'

const redis = await startRedis()
t.teardown(redis.stop)
const config = testConfig(redis.url, { KEY_SHARDS: '1' })
const store = testStore(config)
t.teardown(() => closeRedis(store.redis))
const lease = { token: 'worker-a', heartbeatTtlMs: 10_000, runningMs: 10_000, maxAttempts: 5 }

t.test('a claim sent again with the same sequence number hands back what it claimed', async (t) => {
  for (let i = 0; i < 3; i++) await createHold(store, { id: `c-${i}`, ttlMs: 1000, payload: { i } })
  await createHold(store, { id: 'later', ttlMs: 60_000 })
  await new Promise((resolve) => setTimeout(resolve, 1100))

  const first = await claimDue(store, 0, 10, lease, 1)
  t.equal(first.expired, 3)
  t.same(first.jobs.map((j) => j.id).sort(), ['c-0', 'c-1', 'c-2'])
  t.equal(first.nextDue, first.now + lease.runningMs, 'next due is the end of the leases just given')

  const resent = await claimDue(store, 0, 10, lease, 1)
  t.same(resent.jobs.map((j) => [j.id, j.attempt, j.payload]).sort(), first.jobs.map((j) => [j.id, j.attempt, j.payload]).sort(),
    'same jobs, same attempt, with payload')

  const next = await claimDue(store, 0, 10, lease, 2)
  t.same(next.jobs, [], 'a new claim finds nothing more: the jobs are leased')
  const other = await claimDue(store, 0, 10, { ...lease, token: 'worker-b' }, 1)
  t.same(other.jobs, [], 'another worker with the same sequence number gets nothing')

  const job = first.jobs[0]!
  t.equal(await ackJob(store, job, lease.token), true)
  t.equal(await ackJob(store, job, lease.token), true, 'an ack sent again is fine')
  const again = await claimDue(store, 0, 10, lease, 2)
  t.same(again.jobs.map((j) => j.id).sort(), [], 'still nothing new')
  const { next: due } = await nextDue(store, 0)
  t.ok(due !== undefined)
})
