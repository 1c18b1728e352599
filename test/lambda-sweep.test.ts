import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import t from 'tap'
import { loadConfig } from '../src/config.js'
import { loadHandlers } from '../src/expiry/handlers.js'
import { sweepOnce } from '../src/expiry/sweep-once.js'
import { createLogger } from '../src/logger.js'
import { createWorkerMetrics } from '../src/metrics/worker-metrics.js'
import { closeRedis, createRedis } from '../src/redis/connection.js'
import { createStoreContext } from '../src/store/context.js'
import { createHold } from '../src/store/checkout-store.js'
import { openKeyspace } from '../src/store/layout.js'
import { RECORD_HANDLER, readRecords, successCounts } from './helpers/processes.js'
import { startRedis } from './helpers/redis.js'
import { tempDir } from './helpers/temp.js'

/**
 * src/lambda-sweep.ts invoked in-process, and sweepOnce beside it as a
 * second execution environment with its own connection: overlapping passes
 * run every due expiry once, and a pass stops within its time.
 */
const redis = await startRedis()
t.teardown(redis.stop)
const records = join(tempDir(t, 'sweep'), 'records.jsonl')
const env = {
  REDIS_URL: redis.url,
  KEY_PREFIX: `t${randomBytes(4).toString('hex')}:`,
  LOG_LEVEL: 'silent',
  EXPIRY_HANDLERS: RECORD_HANDLER,
  EXPIRY_HANDLER_TIMEOUT_MS: '2000',
  EXPIRY_BACKOFF_MS: '1',
  EXPIRY_MAX_ATTEMPTS: '2',
  EXPIRY_CONCURRENCY: '8'
}
Object.assign(process.env, env, { RECORD_FILE: records, RECORD_FAIL_IDS: 'flaky:1,broken:always' })
const { handler, close } = await import('../src/lambda-sweep.js')
t.teardown(close)

const config = loadConfig(env)
const log = createLogger('silent', 'test')
const other = createRedis({ url: redis.url, role: 'worker' })
t.teardown(async () => await closeRedis(other))
const store = createStoreContext(other, await openKeyspace(other, config.KEY_PREFIX, config.KEY_SHARDS, log), config.CHECKOUT_RESULT_RETENTION_MS)
const handlers = await loadHandlers(config.EXPIRY_HANDLERS, {})
const budget = (ms: number) => {
  const until = performance.now() + ms
  return () => until - performance.now()
}

async function holdsDueNow (ids: string[], payload?: Record<string, unknown>): Promise<void> {
  await Promise.all(ids.map(async (id) => await createHold(store, { id, ttlMs: 1000, ...(payload ? { payload } : {}) })))
  await new Promise((resolve) => setTimeout(resolve, 1050))
}

t.test('two overlapping sweeps run every due expiry exactly once, with retries and dead letters', async (t) => {
  const ids = [...Array.from({ length: 60 }, (_v, i) => `o${i}`), 'flaky', 'broken']
  await holdsDueNow(ids)
  const [a, b] = await Promise.all([
    handler({}, { getRemainingTimeInMillis: budget(30_000) }),
    sweepOnce({ config, store, handlers, log, metrics: createWorkerMetrics(), remainingMs: budget(30_000) })
  ])
  t.equal(a.stoppedBy, 'idle', 'the invocation ended once nothing was due')
  t.equal(b.stoppedBy, 'idle')
  // Each pass owns its share of the shards once both joined; the first to join may have claimed everything already.
  t.comment(`the passes ran ${a.handled} + ${b.handled}`)
  t.equal(a.handled + b.handled, 61, 'every order but the broken one handled once')
  t.equal(a.dead + b.dead, 1, 'the broken one dead-lettered after its attempts')
  const counts = successCounts(records)
  t.equal(counts.size, 61)
  t.same([...counts.values()].filter((n) => n !== 1), [], 'no order ran twice')
  t.same(readRecords(records).filter((r) => r.id === 'flaky').map((r) => [r.attempt, r.ok]), [[1, false], [2, true]], 'retried once')
})

t.test('a sweep stops before its budget; what it did not run, the next one does', async (t) => {
  const ids = Array.from({ length: 6 }, (_v, i) => `slow${i}`)
  await holdsDueNow(ids, { sleepMs: 250 })
  const short = { ...config, EXPIRY_CONCURRENCY: 1, EXPIRY_HANDLER_TIMEOUT_MS: 500 }
  const started = performance.now()
  const first = await sweepOnce({ config: short, store, handlers, log, metrics: createWorkerMetrics(), remainingMs: budget(1300), reserveMs: 200 })
  const tookMs = performance.now() - started
  t.equal(first.stoppedBy, 'budget')
  t.ok(tookMs < 1300 - 100, `returned before the budget ran out (${Math.round(tookMs)} ms of 1300)`)
  t.ok(first.handled >= 1 && first.handled < ids.length, `ran ${first.handled} of ${ids.length}`)
  const next = await handler({}, { getRemainingTimeInMillis: budget(30_000) })
  t.equal(first.handled + next.handled, ids.length, 'the next invocation ran the rest')
  const counts = successCounts(records)
  t.same(ids.map((id) => counts.get(id)), ids.map(() => 1), 'each once')
})

t.test('a budget shorter than the handler timeout is refused', async (t) => {
  await t.rejects(handler({}, { getRemainingTimeInMillis: () => 4000 }), /raise the function's timeout or lower EXPIRY_HANDLER_TIMEOUT_MS/)
})
