import t from 'tap'
import { closeRedis } from '../../src/redis/connection.js'
import { createHold } from '../../src/store/checkout-store.js'
import { claimDue, heartbeat } from '../../src/store/expiry-jobs.js'
import { testConfig } from '../helpers/app.js'
import { startRedis } from '../helpers/redis.js'
import { testStore } from '../helpers/worker.js'

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
const claimant = { token: 'big', heartbeatTtlMs: 2800, runningMs: 60_000, maxAttempts: 5 }
const HELD = 250

t.test('a reaped worker with 250 jobs is released at most 100 per call, and each release wakes the workers', async (t) => {
  await Promise.all(Array.from({ length: HELD }, async (_v, i) => await createHold(store, { id: `r-${i}`, ttlMs: 1000 })))
  await new Promise((resolve) => setTimeout(resolve, 1100))
  t.equal((await claimDue(store, 0, HELD, claimant, 1)).jobs.length, HELD, 'the worker holds every job')

  const sub = redis.client()
  const wakes: string[] = []
  sub.on('message', (_channel: string, message: string) => wakes.push(message))
  await sub.subscribe(`${config.KEY_PREFIX}due`)

  const seen = (await heartbeat(store, 0, 'reaper')).workers.find((w) => w.token === claimant.token)
  let result = await heartbeat(store, 0, 'reaper', [seen!])
  const perCall = [result.released]
  for (let i = 0; i < 10 && result.reaping > 0; i++) {
    result = await heartbeat(store, 0, 'reaper')
    perCall.push(result.released)
  }
  t.comment(`released per call: ${perCall.join(', ')}`)
  t.ok(perCall.every((n) => n <= 100), 'no call released more than 100 jobs')
  t.equal(perCall.reduce((a, b) => a + b, 0), HELD, 'every job released in the end')
  t.equal(result.reaping, 0, 'the reap is done')
  const k = store.keys.shard(0)
  t.equal(await store.redis.zcount(k.jobs, '-inf', '+inf'), HELD, 'all due again')
  t.equal(await store.redis.exists(k.held(claimant.token)), 0, 'its held set is gone')
  t.equal((await heartbeat(store, 0, claimant.token)).status, 'new', 'the reaped worker learns it')

  await new Promise((resolve) => setTimeout(resolve, 200))
  t.ok(wakes.length >= 1, `the workers were woken on ${config.KEY_PREFIX}due (${wakes.length} messages)`)
  t.ok(wakes.every((m) => m.startsWith(k.base)), 'naming the shard')
})

t.test('while its reap goes on, a reaped worker is refused: it claims nothing', async (t) => {
  const other = { ...claimant, token: 'big-2' }
  await Promise.all(Array.from({ length: HELD }, async (_v, i) => await createHold(store, { id: `s-${i}`, ttlMs: 1000 })))
  await new Promise((resolve) => setTimeout(resolve, 1100))
  t.equal((await claimDue(store, 0, HELD * 2, other, 1)).jobs.length, HELD * 2, 'it holds every due job')
  const seen = (await heartbeat(store, 0, 'reaper')).workers.find((w) => w.token === other.token)
  const first = await heartbeat(store, 0, 'reaper', [seen!])
  t.ok(first.reaping > 0, 'the reap goes on in the next calls')
  t.equal((await heartbeat(store, 0, other.token)).status, 'reaping', 'its heartbeat is not renewed')
  const claim = await claimDue(store, 0, 10, other, 2)
  t.same([claim.registered, claim.jobs.length], [false, 0], 'its claim hands out nothing')
})
