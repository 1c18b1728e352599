import t, { type Test } from 'tap'
import { mergeNotifyFlags } from '../src/expiry/notifications.js'
import { createHold } from '../src/store/checkout-store.js'
import { closeRedis } from '../src/redis/connection.js'
import { testConfig } from './helpers/app.js'
import { startRedis } from './helpers/redis.js'
import { capturingLogger, recorder, testStore, testWorker, until } from './helpers/worker.js'

t.test('flag merge keeps what is set and adds E and x', async (t) => {
  t.equal(mergeNotifyFlags(''), 'Ex')
  t.equal(mergeNotifyFlags('Ex'), 'Ex')
  t.equal(mergeNotifyFlags('xE'), 'xE')
  t.equal(mergeNotifyFlags('Kg$'), 'Kg$Ex')
  t.equal(mergeNotifyFlags('KA'), 'KAE', 'A already includes x')
  t.equal(mergeNotifyFlags('Elh'), 'Elhx')
})

t.test('the worker merges into the server setting without dropping flags', async (t) => {
  const redis = await startRedis()
  t.teardown(redis.stop)
  const admin = redis.client()
  await admin.config('SET', 'notify-keyspace-events', 'Kgl')
  const worker = await testWorker(testConfig(redis.url), [recorder().handler])
  t.teardown(() => worker.close())
  const [, flags] = await admin.config('GET', 'notify-keyspace-events') as unknown as string[]
  t.same(new Set(flags), new Set('Kglx'.split('').concat('E')), `flags now ${flags}`)
})

/** A worker on a Redis started with extra arguments, with its log lines and handler calls. */
async function workerOn (t: Test, extraArgs: string[]) {
  const redis = await startRedis({ extraArgs })
  t.teardown(redis.stop)
  const config = testConfig(redis.url)
  const store = testStore(config)
  t.teardown(() => closeRedis(store.redis))
  const { log, lines } = capturingLogger()
  const { calls, handler } = recorder()
  const worker = await testWorker(config, [handler], log)
  t.teardown(() => worker.close())
  return { store, lines, calls, worker }
}

/** Lines at warn level or above: what an operator's alerting sees. */
// Key format 3 also warns once, when it records the prefix, that it could not read the listpack limits: another matter.
const loud = (lines: Array<Record<string, unknown>>) => lines.filter((l) => Number(l.level) >= 40 && !String(l.msg).startsWith('could not read the listpack limits'))

t.test('CONFIG blocked (managed Redis): one warning with the consequence and the fix, no delay, expiries still handled', async (t) => {
  const started = Date.now()
  const { store, lines, calls } = await workerOn(t, ['--rename-command', 'CONFIG', '', '--notify-keyspace-events', 'Ex'])
  t.ok(Date.now() - started < 1500, `start-up does not wait for the probe (${Date.now() - started} ms)`)
  t.equal(loud(lines).length, 1, 'one line at warn or above')
  t.match(loud(lines)[0], { level: 40, msg: /notify-keyspace-events.*still found on time.*parameter group/s })
  t.ok(await until(() => lines.some((l) => l.msg === 'expired events arrive: the server is configured for them'), 3000), 'the probe saw events')
  await createHold(store, { id: 'managed', ttlMs: 1000 })
  t.ok(await until(() => calls.length === 1, 3000), 'handled')
})

t.test('CONFIG blocked and events off: still one warning; the sweeper alone handles expiries', async (t) => {
  const { store, lines, calls, worker } = await workerOn(t, ['--rename-command', 'CONFIG', ''])
  t.ok(await until(() => lines.some((l) => l.level === 30 && String(l.msg).startsWith('no expired event arrived')), 3000), 'the probe says so')
  await createHold(store, { id: 'no-events', ttlMs: 1000 })
  t.ok(await until(() => calls.length === 1, 3000), 'handled by the sweeper alone')
  t.equal(worker.sweeper.found.event, 0)
  t.equal(worker.sweeper.found.sweep, 1)
  t.equal(loud(lines).length, 1, 'one line at warn or above')
})

t.test('the worker resubscribes by itself after its subscriber connection is killed', async (t) => {
  const redis = await startRedis()
  t.teardown(redis.stop)
  const config = testConfig(redis.url)
  const { log, lines } = capturingLogger()
  const worker = await testWorker(config, [recorder().handler], log)
  t.teardown(() => worker.close())
  const admin = redis.client()
  t.equal(await admin.call('PUBSUB', 'NUMPAT'), 1)
  await admin.call('CLIENT', 'KILL', 'TYPE', 'pubsub')
  t.ok(await until(async () => (await admin.call('PUBSUB', 'NUMPAT')) === 1 &&
    lines.some((l) => l.msg === 'resubscribed to expired events'), 5000), 'subscribed again')
  await admin.config('SET', 'notify-keyspace-events', '')
  await admin.call('CLIENT', 'KILL', 'TYPE', 'pubsub')
  t.ok(await until(async () => {
    const [, flags] = await admin.config('GET', 'notify-keyspace-events') as unknown as string[]
    return flags === 'xE' || flags === 'Ex'
  }, 5000), 'flags restored after reconnecting (as after a Redis restart without redis.conf)')
})
