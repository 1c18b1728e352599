import t from 'tap'
import { closeRedis } from '../../src/redis/connection.js'
import { createHold, getCheckout } from '../../src/store/checkout-store.js'
import { listDeadLetters } from '../../src/store/dead-letters.js'
import { failJob } from '../../src/store/expiry-jobs.js'
import { testConfig } from '../helpers/app.js'
import { startRedis } from '../helpers/redis.js'
import { testStore, until } from '../helpers/worker.js'
import { claimAsOwner } from '../helpers/own.js'

/**
 * An id held again after its old hold's retention passed must get a new
 * identity: a new idempotency key, a new job, never the old job's payload,
 * and the old dead letter stays as it was.
 */
const redis = await startRedis()
t.teardown(redis.stop)
const config = testConfig(redis.url, { KEY_SHARDS: '1', CHECKOUT_RESULT_RETENTION_MS: '1000' })
const store = testStore(config)
t.teardown(() => closeRedis(store.redis))
const lease = { token: 'worker-a', runningMs: 10_000, maxAttempts: 5 }
const sleep = async (ms: number) => await new Promise((resolve) => setTimeout(resolve, ms))

t.test('an id reused after retention never shares a job or an idempotency key with its old hold', async (t) => {
  const old = await createHold(store, { id: 'reused', ttlMs: 1000, payload: { hold: 'old' } })
  await sleep(1100)
  const [oldJob] = (await claimAsOwner(store, 0, 10, lease, 1)).jobs
  t.equal(await failJob(store, oldJob!, lease.token, 'gave up', 1, 0), 'dead', 'the old hold is dead-lettered')
  t.ok(await until(async () => (await getCheckout(store, 'reused').catch(() => undefined)) === undefined, 3000),
    'the old hold is past its retention')

  const fresh = await createHold(store, { id: 'reused', ttlMs: 1000 })
  t.not(fresh.generation, old.generation, 'a new hold identity')
  await sleep(1100)
  const { jobs } = await claimAsOwner(store, 0, 10, lease, 2)
  t.equal(jobs.length, 1, 'one job: the new hold\'s')
  const job = jobs[0]!
  t.equal(job.generation, fresh.generation)
  t.equal(job.payload, undefined, 'the old hold\'s payload is not delivered')
  t.not(`${job.id}:${job.generation}`, `${oldJob!.id}:${oldJob!.generation}`, 'a new idempotency key')

  const dead = await listDeadLetters(store, 0)
  t.match(dead, [{ id: 'reused', generation: old.generation, attempts: 1, lastError: 'gave up', payload: { hold: 'old' } }],
    'the old dead letter is untouched')
  t.equal(dead.length, 1)
  t.equal(await store.redis.zscore(store.keys.shard(0).jobs, oldJob!.member), null, 'the old job is not queued again')
})
