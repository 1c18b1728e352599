import { pino } from 'pino'
import t from 'tap'
import { ConfigError, type Config } from '../src/config.js'
import type { NamedHandler } from '../src/expiry/handlers.js'
import { startExpiryWorker, type ExpiryWorker } from '../src/expiry/worker.js'
import { closeRedis, createRedis } from '../src/redis/connection.js'
import { createHold } from '../src/store/checkout-store.js'
import { testConfig } from './helpers/app.js'
import { freePort, startRedis } from './helpers/redis.js'
import { capturingLogger, recorder, testStore, until } from './helpers/worker.js'

/**
 * The worker's HTTP port: /healthz while the process runs, /readyz only
 * while the worker can find and run expiries, /metrics with what it did.
 */
const redis = await startRedis({ restartable: true })
t.teardown(redis.stop)
const config = testConfig(redis.url, { KEY_SHARDS: '4' })
const store = testStore(config)
t.teardown(() => closeRedis(store.redis))

async function start (handlers: NamedHandler[], port: number, log = pino({ level: 'silent' }), cfg: Config = config): Promise<ExpiryWorker> {
  return await startExpiryWorker({
    config: cfg,
    redis: createRedis({ url: cfg.REDIS_URL, role: 'worker' }),
    subscriber: createRedis({ url: cfg.REDIS_URL, role: 'subscriber' }),
    handlers,
    log,
    http: { port, host: '127.0.0.1' }
  })
}

async function get (port: number, path: string): Promise<{ status: number, body: string, retryAfter: string | null }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(3000) })
  return { status: res.status, body: await res.text(), retryAfter: res.headers.get('retry-after') }
}
const status = async (port: number, path: string) => (await get(port, path)).status

/** The value of one sample, or 0 when absent; `labels` must all match. */
function sample (text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0
  for (const line of text.split('\n')) {
    const m = /^([a-z_:]+)(?:\{(.*)\})? (\S+)$/.exec(line)
    if (!m || m[1] !== name) continue
    const have = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((l) => [l[1], l[2]]))
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) sum += Number(m[3])
  }
  return sum
}

const rec = recorder()
const port = await freePort()
let worker: ExpiryWorker | undefined

t.test('readyz is 503 until the worker has subscribed, then 200; healthz is 200 throughout', async (t) => {
  await redis.kill()
  const starting = start([rec.handler], port)
  t.ok(await until(async () => await status(port, '/healthz').catch(() => 0) === 200, 5000), 'healthz answers while Redis is away')
  const ready = await get(port, '/readyz')
  t.equal(ready.status, 503)
  t.equal(ready.retryAfter, '1', 'a 503 says when to ask again')
  t.match(JSON.parse(ready.body), { status: 'not ready', reason: 'starting' })
  await redis.start()
  worker = await starting
  t.equal(worker.httpPort, port)
  t.ok(await until(async () => await status(port, '/readyz') === 200, 5000), 'ready once subscribed')
})

t.test('metrics show handled expiries by trigger, lateness, pending holds and the subscriber', async (t) => {
  const ids = Array.from({ length: 20 }, (_v, i) => `http-${i}`)
  await Promise.all(ids.map(async (id) => await createHold(store, { id, ttlMs: 1000 })))
  await createHold(store, { id: 'still-pending', ttlMs: 600_000 })
  t.ok(await until(() => rec.calls.length >= ids.length, 10_000), 'all expired and handled')
  // The handler returns before the runner records the outcome: wait for the acknowledgements too.
  t.ok(await until(() => worker?.runner.size === 0 && worker.runner.stats.handled >= ids.length, 5000), 'all acknowledged')

  const res = await get(port, '/metrics')
  t.equal(res.status, 200)
  const text = res.body
  const handled = sample(text, 'checkout_expiry_runs_total', { outcome: 'handled', found_by: 'event' }) +
    sample(text, 'checkout_expiry_runs_total', { outcome: 'handled', found_by: 'sweep' })
  t.equal(handled, ids.length, 'handled, found by event or sweep')
  t.equal(sample(text, 'checkout_expiry_runs_total', { found_by: 'retry' }), 0, 'no retries')
  t.equal(sample(text, 'checkout_expiry_found_total'), ids.length, 'expiries recorded by this worker')
  t.equal(sample(text, 'checkout_expiry_lateness_seconds_count'), ids.length, 'one lateness per first run')
  t.ok(sample(text, 'checkout_expiry_lateness_seconds_bucket', { le: '60' }) === ids.length, 'within a minute')
  t.equal(sample(text, 'checkout_expiry_handler_duration_seconds_count'), ids.length)
  t.equal(sample(text, 'checkout_expiry_pending_holds'), 1, 'the one hold still pending')
  t.equal(sample(text, 'checkout_expiry_dead_letters'), 0)
  t.equal(sample(text, 'checkout_expiry_subscriber_connected'), 1)
  t.equal(sample(text, 'checkout_expiry_ready'), 1, 'ready, as /readyz says')
  t.equal(sample(text, 'checkout_expiry_running_handlers'), 0)
  t.equal(sample(text, 'checkout_expiry_owned_shards'), config.KEY_SHARDS, 'the only worker owns every shard')
  t.match(text, /^nodejs_eventloop_lag_seconds /m, 'default process metrics')
  t.match(res.body, /^# TYPE checkout_expiry_lateness_seconds histogram$/m)
})

t.test('a failing handler shows as a failure of that handler and a retry', async (t) => {
  // A key prefix of its own, so the other worker never takes the order.
  const own = testConfig(redis.url, { KEY_SHARDS: '4' })
  const ownStore = testStore(own)
  t.teardown(() => closeRedis(ownStore.redis))
  const w = await start([{ name: 'flaky', handle: () => { throw new Error('downstream is down') } }], 0, undefined, own)
  t.teardown(() => w.close(1000))
  await createHold(ownStore, { id: 'fails-once', ttlMs: 1000 })
  const scrape = async () => (await get(w.httpPort ?? 0, '/metrics')).body
  t.ok(await until(async () => sample(await scrape(), 'checkout_expiry_handler_failures_total', { handler: 'flaky' }) >= 1, 10_000),
    'the failing handler is named')
  const text = await scrape()
  t.equal(sample(text, 'checkout_expiry_runs_total', { outcome: 'retried', found_by: 'sweep' }) +
    sample(text, 'checkout_expiry_runs_total', { outcome: 'retried', found_by: 'event' }), 1, 'the first run is retried')
  t.equal(sample(text, 'checkout_expiry_runs_total', { outcome: 'handled' }), 0)
})

t.test('readyz is 503 while Redis is down and 200 once it is back', async (t) => {
  await redis.kill()
  t.ok(await until(async () => await status(port, '/readyz') === 503, 5000), '503 while Redis is down')
  t.match(JSON.parse((await get(port, '/readyz')).body).reason, /Redis/)
  const scrape = await get(port, '/metrics')
  t.equal(scrape.status, 200, 'metrics answer without Redis')
  t.equal(sample(scrape.body, 'checkout_expiry_subscriber_connected'), 0)
  t.equal(sample(scrape.body, 'checkout_expiry_ready'), 0, 'not ready, as /readyz says')
  t.equal(await status(port, '/healthz'), 200, 'alive all the same')
  await redis.start()
  t.ok(await until(async () => await status(port, '/readyz') === 200, 10_000), '200 after Redis returns')
})

t.test('readyz is 503 while the worker shuts down; the port is closed after', async (t) => {
  let release = () => {}
  const blocked = new Promise<void>((resolve) => { release = resolve })
  let running = false
  const w = await start([{ name: 'slow', handle: async () => { running = true; await blocked } }], 0)
  const wPort = w.httpPort ?? 0
  t.equal(await status(wPort, '/readyz'), 200)
  // The first worker would take the order too; stop it first.
  await worker?.close(2000)
  await t.rejects(get(port, '/healthz'), 'the first worker\'s port is closed')
  await createHold(store, { id: 'slow-one', ttlMs: 1000 })
  t.ok(await until(() => running, 10_000), 'the handler runs')
  const closing = w.close(5000)
  const during = await get(wPort, '/readyz')
  t.equal(during.status, 503)
  t.match(JSON.parse(during.body), { reason: 'shutting down' })
  t.equal(await status(wPort, '/healthz'), 200, 'still alive while it drains')
  release()
  await closing
  await t.rejects(get(wPort, '/healthz'), 'closed with the worker')
})

t.test('port 0 picks a free port and logs it; a taken port refuses to start with one clear error', async (t) => {
  const { log, lines } = capturingLogger()
  const w = await start([], 0, log)
  t.teardown(() => w.close(1000))
  const line = lines.find((l) => l.msg === 'worker http listening: /metrics, /healthz, /readyz')
  t.ok(w.httpPort !== undefined && w.httpPort > 0)
  t.match(line, { port: w.httpPort, host: '127.0.0.1' }, 'the actual port is logged')
  await t.rejects(start([], w.httpPort ?? 0), ConfigError)
  await t.rejects(start([], w.httpPort ?? 0), /WORKER_HTTP_PORT=\d+: cannot listen on 127\.0\.0\.1:\d+ \(EADDRINUSE\)/)
})
