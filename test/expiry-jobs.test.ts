import t, { type Test } from 'tap'
import { closeRedis } from '../src/redis/connection.js'
import { createHold, getCheckout } from '../src/store/checkout-store.js'
import { countDeadLetters, listDeadLetters, purgeDeadLetter, replayDeadLetter } from '../src/store/dead-letters.js'
import { ackJob, ackJobs, claimDue, failJob, nextDue, releaseJobs } from '../src/store/expiry-jobs.js'
import { testConfig } from './helpers/app.js'
import { startRedis } from './helpers/redis.js'
import { testStore, until } from './helpers/worker.js'
import { claimAsOwner } from './helpers/own.js'
import { beatMembership, ownShard, shardOwner } from '../src/store/membership.js'

const redis = await startRedis()
t.teardown(redis.stop)
const config = testConfig(redis.url, { KEY_SHARDS: '1' })
const store = testStore(config)
t.teardown(() => closeRedis(store.redis))
const lease = { token: 'worker-a', runningMs: 10_000, maxAttempts: 5 }

t.test('a claim sent again with the same sequence number hands back what it claimed', async (t) => {
  for (let i = 0; i < 3; i++) await createHold(store, { id: `c-${i}`, ttlMs: 1000, payload: { i } })
  await createHold(store, { id: 'later', ttlMs: 60_000 })
  await new Promise((resolve) => setTimeout(resolve, 1100))

  const first = await claimAsOwner(store, 0, 10, lease, 1)
  t.equal(first.expired, 3)
  t.same(first.jobs.map((j) => j.id).sort(), ['c-0', 'c-1', 'c-2'])
  t.equal(first.nextDue, first.now + lease.runningMs, 'next due is the end of the leases just given')

  const resent = await claimAsOwner(store, 0, 10, lease, 1)
  t.same(resent.jobs.map((j) => [j.id, j.attempt, j.payload]).sort(), first.jobs.map((j) => [j.id, j.attempt, j.payload]).sort(),
    'same jobs, same attempt, with payload')

  const next = await claimAsOwner(store, 0, 10, lease, 2)
  t.same(next.jobs, [], 'a new claim finds nothing more: the jobs are leased')
  const other = await claimAsOwner(store, 0, 10, { ...lease, token: 'worker-b' }, 1)
  t.same(other.jobs, [], 'another worker with the same sequence number gets nothing')

  const job = first.jobs[0]!
  t.equal(await ackJob(store, job, lease.token), true)
  t.equal(await ackJob(store, job, lease.token), true, 'an ack sent again is fine')
  const again = await claimAsOwner(store, 0, 10, lease, 2)
  t.same(again.jobs.map((j) => j.id).sort(), [], 'still nothing new')
  const { next: due } = await nextDue(store, 0)
  t.ok(due !== undefined)
  // Done with the others too: left leased, they would fall due again (runningMs) in the middle of a later test.
  t.same(await ackJobs(store, 0, lease.token, first.jobs.slice(1)), [true, true])
})

const sleep = async (ms: number) => await new Promise((resolve) => setTimeout(resolve, ms))
const expiredJob = async (id: string, payload?: Record<string, unknown>) => {
  await createHold(store, { id, ttlMs: 1000, payload })
  await sleep(1050)
}

t.test('a worker judged lapsed is reaped only if its beat number did not move: its job goes to another worker, and its stale claim and outcome are refused', async (t) => {
  const a = { ...lease, token: 'fence-a' }
  const b = { ...lease, token: 'fence-b' }
  await beatMembership(store, a.token)
  await beatMembership(store, b.token)
  await expiredJob('fenced')
  const [mine] = (await claimAsOwner(store, 0, 10, a, 1)).jobs
  t.equal(mine!.attempt, 1)
  const aEpoch = (await shardOwner(store, 0)).epoch
  t.same((await claimAsOwner(store, 0, 10, b, 1)).jobs, [], 'held while a lives, though b took the shard')
  const seen = (await beatMembership(store, b.token)).live.find((w) => w.token === a.token)
  t.ok(seen, "b sees a's beat number")
  // a beats: a reap naming the old number is refused.
  await beatMembership(store, a.token)
  const stale = await beatMembership(store, b.token, [seen!])
  t.notOk(stale.gone.includes(a.token), 'a beat since: not reaped')
  const now = stale.live.find((w) => w.token === a.token)!
  t.ok(now.beat > seen!.beat, 'its beat number moved')
  const reaped = await beatMembership(store, b.token, [now])
  t.ok(reaped.gone.includes(a.token) && !reaped.live.some((w) => w.token === a.token), 'a is gone from the live workers')
  t.equal((await ownShard(store, 0, b.token, reaped.gone)).released, 1, "b, the shard's owner, released a's job")
  const [taken] = (await claimAsOwner(store, 0, 10, b, 2)).jobs
  t.match(taken, { id: 'fenced', attempt: 2 }, 'b runs it as attempt 2')
  const late = await claimDue(store, 0, 10, a, 2, aEpoch)
  t.same([late.owns, late.jobs], [false, []], "a's claim in its old epoch is refused")
  t.equal(await ackJob(store, taken!, b.token), true)
  t.equal(await ackJob(store, mine!, a.token), false, "a's late ack is refused, not taken for an ack sent twice")
  t.equal(await failJob(store, mine!, a.token, 'late', 5, 0), 'claim-lost', "a's late failure is refused")
  t.equal((await beatMembership(store, a.token)).status, 'reaped', 'a learns it was reaped')
  t.equal((await beatMembership(store, a.token)).status, 'reaped', 'and stays so: it must join under a new token')
})

t.test('due jobs are handed out before new expiries; an expiry that finds the claim full waits in the queue', async (t) => {
  const w = { ...lease, token: 'limit-w' }
  for (let i = 0; i < 4; i++) await createHold(store, { id: `lim-${i}`, ttlMs: 1000, payload: { i } })
  await sleep(1050)
  const first = await claimAsOwner(store, 0, 2, w, 1)
  t.equal(first.expired, 2, 'a claim expires at most its limit')
  t.equal(first.jobs.length, 2)
  t.equal(await releaseJobs(store, 0, w.token, first.jobs.map((job) => ({ job, how: 'unstarted' as const }))), 2, 'both given back unstarted')

  const second = await claimAsOwner(store, 0, 3, w, 2)
  t.equal(second.expired, 2, 'the two other holds expire')
  t.same(second.jobs.slice(0, 2).map((j) => j.id).sort(), first.jobs.map((j) => j.id).sort(), 'the jobs given back come first')
  t.equal(second.jobs.length, 3, 'then one new expiry fills the claim')
  const left = (await store.redis.zrangebyscore(store.keys.shard(0).jobs, '-inf', second.now)).filter((m) => m.includes(':lim-'))
  t.equal(left.length, 1, 'the other new expiry waits in the queue, due now')

  const third = await claimAsOwner(store, 0, 10, w, 3)
  const all = [...second.jobs, ...third.jobs.filter((j) => j.id.startsWith('lim-'))]
  t.same(all.map((j) => j.id).sort(), ['lim-0', 'lim-1', 'lim-2', 'lim-3'], 'and comes with the next claim')
  t.ok(all.every((j) => j.attempt === 1), 'each as its first attempt')
  t.same(all.map((j) => j.payload?.i).sort(), [0, 1, 2, 3], 'each with its payload')
  t.same(await ackJobs(store, 0, w.token, all), [true, true, true, true])
})

/** Keys Redis reports expired from now on (keyspace notifications on, a subscriber closed at the end of the test). */
async function expiredKeys (t: Test): Promise<string[]> {
  await redis.client().config('SET', 'notify-keyspace-events', 'Ex')
  const sub = redis.client()
  const expired: string[] = []
  sub.on('pmessage', (_p: string, _c: string, key: string) => expired.push(key))
  await sub.psubscribe('__keyevent@0__:expired')
  t.teardown(() => { sub.disconnect() })
  return expired
}

t.test('a hold claimed on time deletes its timer before it expires: no expired event; an unclaimed one still publishes it', async (t) => {
  const expired = await expiredKeys(t)
  // A timer key per hold: key formats 1 and 2 (format 3 below).
  const own = testStore(testConfig(redis.url, { KEY_SHARDS: '1', KEY_PREFIX: 'timer-test:', KEY_FORMAT: '1' }))
  t.teardown(() => closeRedis(own.redis))
  const w = { ...lease, token: 'timer-w' }
  await createHold(own, { id: 'on-time', ttlMs: 1000 })
  await createHold(own, { id: 'unclaimed', ttlMs: 1000 })
  await sleep(1020)
  const jobs = (await claimAsOwner(own, 0, 1, w, 1)).jobs
  t.same(jobs.map((j) => j.id), ['on-time'], 'claimed at its deadline')
  await sleep(600)
  t.notOk(expired.includes(own.keys.order('on-time').timer), 'no expired event for the claimed hold')
  t.ok(await until(() => expired.includes(own.keys.order('unclaimed').timer), 3000), 'the unclaimed hold still publishes its event')
})

t.test('key format 3: a claim that leaves no pending hold deletes the shard timer; a shard left unclaimed publishes its expiry', async (t) => {
  const expired = await expiredKeys(t)
  const claimed = testStore(testConfig(redis.url, { KEY_SHARDS: '1', KEY_PREFIX: 'timer3-claimed:', KEY_FORMAT: '3' }))
  const unclaimed = testStore(testConfig(redis.url, { KEY_SHARDS: '1', KEY_PREFIX: 'timer3-unclaimed:', KEY_FORMAT: '3' }))
  t.teardown(() => Promise.all([closeRedis(claimed.redis), closeRedis(unclaimed.redis)]))
  const w = { ...lease, token: 'timer3-w' }
  await createHold(claimed, { id: 'on-time', ttlMs: 1000 })
  await createHold(unclaimed, { id: 'unclaimed', ttlMs: 1000 })
  await sleep(1020)
  t.same((await claimAsOwner(claimed, 0, 1, w, 1)).jobs.map((j) => j.id), ['on-time'], 'claimed at its deadline')
  await sleep(600)
  t.notOk(expired.includes(claimed.keys.shard(0).shardTimer), 'no expired event for the shard the claim emptied')
  t.ok(await until(() => expired.includes(unclaimed.keys.shard(0).shardTimer), 3000), 'the unclaimed shard still publishes its event')
})

t.test('a claim that hands out nothing writes no claim record', async (t) => {
  const idle = { ...lease, token: 'idle-w' }
  const result = await claimAsOwner(store, 0, 10, idle, 1)
  t.same(result.jobs, [])
  t.equal(await store.redis.exists(store.keys.shard(0).claimRecord(idle.token)), 0)
})

t.test('one ack call records many runs, each with its own answer', async (t) => {
  const a = { ...lease, token: 'batch-a' }
  for (let i = 0; i < 4; i++) await createHold(store, { id: `batch-${i}`, ttlMs: 1000 })
  await sleep(1050)
  const jobs = (await claimAsOwner(store, 0, 10, a, 1)).jobs.filter((j) => j.id.startsWith('batch-')).sort((x, y) => x.id.localeCompare(y.id))
  t.equal(jobs.length, 4)
  const stale = { ...jobs[3]!, attempt: 7 }
  t.same(await ackJobs(store, 0, a.token, [jobs[0]!, jobs[1]!, stale, jobs[2]!]), [true, true, false, true],
    'a run with another fencing token is refused; the others are acknowledged')
  t.same(await ackJobs(store, 0, a.token, [jobs[0]!, jobs[3]!]), [true, true], 'an ack sent again is fine, next to a new one')
  const k = store.keys.shard(0)
  t.equal(await store.redis.scard(k.held(a.token)), 0, 'the worker holds none of them')
  for (const job of jobs) {
    t.equal(await store.redis.zscore(k.jobs, job.member), null, `${job.id} left the job queue`)
    t.equal(await store.redis.exists(k.job(job.member)), 0, `job hash of ${job.id} deleted`)
    t.equal((await getCheckout(store, job.id)).outcome, 'handled', `${job.id} recorded as handled`)
  }
  await t.rejects(ackJobs(store, 1, a.token, [jobs[0]!]), /shard/, 'jobs of another shard are refused before anything is sent')
})

t.test('the same worker claiming a job again fences its own earlier run', async (t) => {
  const a = { ...lease, token: 'self-a', runningMs: 100 }
  await expiredJob('self')
  const [first] = (await claimAsOwner(store, 0, 10, a, 1)).jobs
  await sleep(150)
  const [second] = (await claimAsOwner(store, 0, 10, a, 2)).jobs
  t.match(second, { id: 'self', attempt: 2 }, 'due again past the safety net')
  t.equal(await ackJob(store, first!, a.token), false, 'attempt 1 can no longer record success')
  t.equal(await ackJob(store, second!, a.token), true)
})

t.test('released jobs: unstarted ones get their attempt back, abandoned ones keep it', async (t) => {
  const a = { ...lease, token: 'rel-a' }
  const b = { ...lease, token: 'rel-b' }
  await createHold(store, { id: 'rel-1', ttlMs: 1000 })
  await expiredJob('rel-2')
  const jobs = (await claimAsOwner(store, 0, 10, a, 1)).jobs
  const [one, two] = ['rel-1', 'rel-2'].map((id) => jobs.find((j) => j.id === id)!)
  t.equal(await releaseJobs(store, 0, a.token, [{ job: one!, how: 'unstarted' }, { job: two!, how: 'abandoned' }]), 2)
  t.equal(await releaseJobs(store, 0, a.token, [{ job: one!, how: 'unstarted' }]), 0, 'a release sent twice does nothing')
  const again = (await claimAsOwner(store, 0, 10, b, 1)).jobs
  t.same(again.map((j) => [j.id, j.attempt]).sort(), [['rel-1', 1], ['rel-2', 2]])
  t.equal(await ackJob(store, one!, a.token), false, 'the releasing worker cannot ack any more')
  for (const j of again) t.equal(await ackJob(store, j, b.token), true)
})

t.test('leaving a shard gives back everything held and removes the worker', async (t) => {
  const a = { ...lease, token: 'leave-a' }
  await expiredJob('leave-1')
  t.equal((await claimAsOwner(store, 0, 10, a, 1)).jobs.length, 1)
  t.equal(await releaseJobs(store, 0, a.token, [], true), 1)
  const k = store.keys.shard(0)
  t.equal((await shardOwner(store, 0)).token, '', 'the shard has no owner until the next takes it')
  t.equal(await store.redis.exists(k.held(a.token), k.claimRecord(a.token)), 0, 'its held set and claim record are gone')
  const [job] = (await claimAsOwner(store, 0, 10, lease, 3)).jobs
  t.match(job, { id: 'leave-1', attempt: 1 }, 'the interrupted attempt is given back')
  t.equal(await ackJob(store, job!, lease.token), true)
})

t.test('a job whose last attempt never reported back is dead-lettered by the next claim', async (t) => {
  const a = { ...lease, token: 'crash-a', maxAttempts: 2 }
  await expiredJob('crashy', { p: 1 })
  for (let seq = 1; seq <= 2; seq++) {
    t.equal((await claimAsOwner(store, 0, 10, { ...a, token: `crash-${seq}` }, seq)).jobs.length, 1, `attempt ${seq} handed out`)
    // The worker "dies": another one judges it lapsed and reaps it.
    await beatMembership(store, `crash-${seq}`)
    const seen = (await beatMembership(store, 'observer')).live.find((w) => w.token === `crash-${seq}`)
    const { gone } = await beatMembership(store, 'observer', [seen!])
    t.equal((await ownShard(store, 0, 'observer', gone)).released, 1, `attempt ${seq} released by the reap`)
  }
  await releaseJobs(store, 0, 'observer', [], true)
  t.same((await claimAsOwner(store, 0, 10, a, 9)).jobs.filter((j) => j.id === 'crashy'), [], 'not handed out a third time')
  const [dead] = await listDeadLetters(store, 0)
  t.match(dead, { id: 'crashy', attempts: 2, lastError: /never reported back/, payload: { p: 1 } })
  t.equal(await countDeadLetters(store), 1)

  t.equal(await replayDeadLetter(store, 0, dead!.member), true, 'replayed')
  t.equal(await replayDeadLetter(store, 0, dead!.member), false, 'not dead any more')
  const [replayed] = (await claimAsOwner(store, 0, 10, lease, 4)).jobs
  t.match(replayed, { id: 'crashy', attempt: 3 }, 'same identity; attempt numbers go on, so no fencing token is reused')
  t.equal(await ackJob(store, { ...replayed!, attempt: 2 }, lease.token), false, 'a late ack of the last attempt before the dead letter is refused')
  t.equal(await failJob(store, replayed!, lease.token, 'still broken', 2, 0), 'retry', 'a fresh set of attempts: 1 of 2 used')
  const [again] = (await claimAsOwner(store, 0, 10, lease, 5)).jobs
  t.equal(await failJob(store, again!, lease.token, 'still broken', 2, 0), 'dead', '2 of 2 used')
  t.equal(await purgeDeadLetter(store, 0, dead!.member), true, 'purged')
  t.equal(await countDeadLetters(store), 0)
  t.equal(await store.redis.exists(store.keys.shard(0).job(dead!.member)), 0, 'its job hash is gone')
})
