import t, { type Test } from 'tap'
import type { ExpiryEvent, HandlerContext } from '../src/expiry/handlers.js'
import { closeRedis } from '../src/redis/connection.js'
import { getCheckout } from '../src/store/checkout-store.js'
import type { StoreContext } from '../src/store/context.js'
import { testConfig } from './helpers/app.js'
import { startRedis } from './helpers/redis.js'
import { expiredJob, testRunner } from './helpers/runner.js'
import { capturingLogger, testStore, until } from './helpers/worker.js'

/**
 * An outcome Redis refuses (OOM under noeviction here; MISCONF and BUSY
 * are alike) is sent again with backoff while the claim is still this
 * worker's, and recorded once Redis takes writes again: a handler that
 * succeeded is handled once, never run again or dead-lettered.
 */
const redis = await startRedis()
t.teardown(redis.stop)
const admin = redis.client()

/** Every write is refused with OOM (maxmemory 1 byte, noeviction) until the returned function lifts it. */
async function refuseWrites (t: Test): Promise<() => Promise<void>> {
  await admin.config('SET', 'maxmemory-policy', 'noeviction')
  await admin.config('SET', 'maxmemory', '1')
  const lift = async () => { await admin.config('SET', 'maxmemory', '0') }
  t.teardown(lift)
  return lift
}

/**
 * Every command is answered BUSY: a script loops past busy-reply-threshold
 * on a connection of its own, until the returned function kills it.
 */
async function busy (t: Test): Promise<() => Promise<void>> {
  await admin.config('SET', 'busy-reply-threshold', '100')
  const looper = redis.client()
  const looping = looper.eval('local i = 0 while true do i = i + 1 end', 0).catch(() => {})
  const probe = redis.client()
  await until(async () => await probe.ping().then(() => false, (err: Error) => err.message.startsWith('BUSY')), 3000, 20)
  probe.disconnect()
  const lift = async () => {
    await admin.call('SCRIPT', 'KILL').catch(() => {})
    await looping
    looper.disconnect()
  }
  t.teardown(lift)
  return lift
}

function freshStore (t: Test): StoreContext {
  const store = testStore(testConfig(redis.url))
  t.teardown(() => closeRedis(store.redis))
  return store
}

/** A handler that waits until `open()` is called, then succeeds or throws. */
function gated (fail = false) {
  let open = () => {}
  const gate = new Promise<void>((resolve) => { open = resolve })
  let runs = 0
  const handler = {
    name: 'gated',
    handle: async (_e: ExpiryEvent, ctx: HandlerContext) => {
      runs++
      await Promise.race([gate, new Promise((_resolve, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason)))])
      if (fail) throw new Error('card service said no')
    }
  }
  return { handler, open: () => open(), runs: () => runs }
}

t.test('an ack Redis refuses with OOM is sent again until Redis takes it: handled once', async (t) => {
  const store = freshStore(t)
  const { handler, open, runs } = gated()
  const runner = testRunner(store, { handlers: [handler] })
  const job = await expiredJob(store, 'ack-oom')
  runner.start(job, 'sweep')
  const lift = await refuseWrites(t)
  open()
  await new Promise((resolve) => setTimeout(resolve, 600))
  t.equal((await getCheckout(store, 'ack-oom')).outcome, 'pending', 'nothing recorded while Redis refuses writes')
  await lift()
  t.ok(await until(async () => (await getCheckout(store, 'ack-oom')).outcome === 'handled', 5000), 'handled once Redis takes writes')
  t.match(await getCheckout(store, 'ack-oom'), { outcome: 'handled', attempts: 1 })
  t.equal(await store.redis.exists(store.keys.shard(job.shard).job(job.member)), 0, 'the job is gone')
  t.equal(runs(), 1, 'the handler ran once')
  t.equal(runner.stats.handled, 1)
})

t.test('a failure Redis answers BUSY is recorded once Redis answers again: a retry, not lost', async (t) => {
  const store = freshStore(t)
  const { handler, open } = gated(true)
  const runner = testRunner(store, { handlers: [handler] })
  runner.start(await expiredJob(store, 'fail-oom'), 'sweep')
  const lift = await busy(t)
  open()
  await new Promise((resolve) => setTimeout(resolve, 600))
  await lift()
  t.ok(await until(async () => (await getCheckout(store, 'fail-oom')).outcome === 'retrying', 5000), 'the failure is recorded')
  t.match(await getCheckout(store, 'fail-oom'), { attempts: 1, lastError: 'card service said no' })
  t.equal(runner.stats.retried, 1)
})

t.test('a release Redis refuses with OOM is sent again: the abandoned run is given back', async (t) => {
  const store = freshStore(t)
  const { handler } = gated()
  const runner = testRunner(store, { handlers: [handler] })
  const job = await expiredJob(store, 'release-oom')
  runner.start(job, 'sweep')
  const lift = await refuseWrites(t)
  runner.abandonAll('contact with Redis lost', false)
  await new Promise((resolve) => setTimeout(resolve, 600))
  await lift()
  const jobKey = store.keys.shard(job.shard).job(job.member)
  t.ok(await until(async () => (await store.redis.hget(jobKey, 'l')) === '', 5000), 'given back once Redis takes writes')
  t.equal(await store.redis.hget(jobKey, 'a'), '0', 'with its attempt')
})

t.test('a finished run abandoned while Redis refuses its ack still records it once Redis takes it: the claim was never taken over', async (t) => {
  const store = freshStore(t)
  const { handler, open, runs } = gated()
  const runner = testRunner(store, { handlers: [handler] })
  const job = await expiredJob(store, 'ack-then-lost')
  runner.start(job, 'sweep')
  const lift = await refuseWrites(t)
  open()
  await new Promise((resolve) => setTimeout(resolve, 300))
  runner.abandonAll('contact with Redis lost', false)
  await new Promise((resolve) => setTimeout(resolve, 300))
  await lift()
  t.ok(await until(async () => (await getCheckout(store, 'ack-then-lost')).outcome === 'handled', 5000), 'handled')
  t.equal(runs(), 1, 'the handler ran once')
})

t.test('an outcome is sent again at most until the claim\'s safety net has passed', async (t) => {
  const store = freshStore(t)
  const { handler, open } = gated()
  const { log, lines } = capturingLogger()
  const runner = testRunner(store, { handlers: [handler], safetyNetMs: 400, log })
  runner.start(await expiredJob(store, 'gives-up'), 'sweep')
  const lift = await refuseWrites(t)
  open()
  t.ok(await until(() => lines.some((l) => l.msg === 'could not record the handler outcome; the order will be handled again'), 3000), 'given up')
  await lift()
  t.equal(runner.size, 0, 'the run is over')
  t.equal(runner.stats.handled, 0, 'not counted as handled')
})
