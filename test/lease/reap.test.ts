import t from 'tap'
import { closeRedis } from '../../src/redis/connection.js'
import { createHold } from '../../src/store/checkout-store.js'
import { claimDue } from '../../src/store/expiry-jobs.js'
import { beatMembership, ownShard } from '../../src/store/membership.js'
import { testConfig } from '../helpers/app.js'
import { startRedis } from '../helpers/redis.js'
import { testStore } from '../helpers/worker.js'
import { claimAsOwner } from '../helpers/own.js'

/**
 * Reaping a worker: bounded work per script call (a reaped worker holding
 * many jobs is released over several calls, never in one long script), and
 * the released jobs wake the workers on `<prefix>due` at once.
 */
const redis = await startRedis()
t.teardown(redis.stop)
const config = testConfig(redis.url, { KEY_SHARDS: '1' })
const store = testStore(config)
t.teardown(() => closeRedis(store.redis))
const claimant = { token: 'big', runningMs: 60_000, maxAttempts: 5 }
const HELD = 250

t.test('a reaped worker with 250 jobs is released at most 100 per call, and each release wakes the workers', async (t) => {
  await Promise.all(Array.from({ length: HELD }, async (_v, i) => await createHold(store, { id: `r-${i}`, ttlMs: 1000 })))
  await new Promise((resolve) => setTimeout(resolve, 1100))
  t.equal((await claimAsOwner(store, 0, HELD, claimant, 1)).jobs.length, HELD, 'the worker holds every job')

  const sub = redis.client()
  const wakes: string[] = []
  sub.on('message', (_channel: string, message: string) => wakes.push(message))
  await sub.subscribe(`${config.KEY_PREFIX}due`)

  await beatMembership(store, claimant.token)
  const seen = (await beatMembership(store, 'reaper')).live.find((w) => w.token === claimant.token)
  const { gone } = await beatMembership(store, 'reaper', [seen!])
  let result = await ownShard(store, 0, 'reaper', gone)
  const perCall = [result.released]
  for (let i = 0; i < 10 && result.reaping > 0; i++) {
    result = await ownShard(store, 0, 'reaper')
    perCall.push(result.released)
  }
  t.comment(`released per call: ${perCall.join(', ')}`)
  t.ok(perCall.every((n) => n <= 100), 'no call released more than 100 jobs')
  t.equal(perCall.reduce((a, b) => a + b, 0), HELD, 'every job released in the end')
  t.equal(result.reaping, 0, 'the reap is done')
  const k = store.keys.shard(0)
  t.equal(await store.redis.zcount(k.jobs, '-inf', '+inf'), HELD, 'all due again')
  t.equal(await store.redis.exists(k.held(claimant.token)), 0, 'its held set is gone')
  t.equal((await beatMembership(store, claimant.token)).status, 'reaped', 'the reaped worker learns it')

  await new Promise((resolve) => setTimeout(resolve, 200))
  const dueWakes = wakes.filter((m) => m !== 'members')
  t.ok(dueWakes.length >= 1, `the workers were woken on ${config.KEY_PREFIX}due (${dueWakes.length} messages)`)
  t.ok(dueWakes.every((m) => m.startsWith(k.base)), 'naming the shard')
  t.ok(wakes.includes('members'), 'and told that the workers changed')
})

t.test('a reaped owner is refused: the reaper took its shard, and its claim in its old epoch hands out nothing', async (t) => {
  const other = { ...claimant, token: 'big-2' }
  await beatMembership(store, other.token)
  await Promise.all(Array.from({ length: HELD }, async (_v, i) => await createHold(store, { id: `s-${i}`, ttlMs: 1000 })))
  await new Promise((resolve) => setTimeout(resolve, 1100))
  const { epoch } = await ownShard(store, 0, other.token)
  t.equal((await claimDue(store, 0, HELD * 2, other, 1, epoch)).jobs.length, HELD * 2, 'it holds every due job (these and the last test\'s)')
  const seen = (await beatMembership(store, 'reaper')).live.find((w) => w.token === other.token)
  const { gone } = await beatMembership(store, 'reaper', [seen!])
  const first = await ownShard(store, 0, 'reaper', gone)
  t.ok(first.reaping > 0, 'the release goes on in the next calls')
  t.ok(first.epoch > epoch, 'the reaper owns the shard in a later epoch')
  t.equal((await beatMembership(store, other.token)).status, 'reaped', 'its heartbeat is not renewed')
  await createHold(store, { id: 's-late', ttlMs: 1000 })
  await new Promise((resolve) => setTimeout(resolve, 1100))
  const claim = await claimDue(store, 0, 10, other, 2, epoch)
  t.same([claim.owns, claim.jobs.length], [false, 0], 'its claim hands out nothing')
})
