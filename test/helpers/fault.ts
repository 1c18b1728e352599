import { join } from 'node:path'
import type { Test } from 'tap'
import type { Config } from '../../src/config.js'
import { closeRedis } from '../../src/redis/connection.js'
import { createHold, getCheckout } from '../../src/store/checkout-store.js'
import type { StoreContext } from '../../src/store/context.js'
import { testConfig } from './app.js'
import { readRecords, RECORD_HANDLER, startWorker, successCounts, type Child, type Recorded } from './processes.js'
import { startRedis, type TestRedis, type TestRedisOptions } from './redis.js'
import { tempDir } from './temp.js'
import { testStore, until } from './worker.js'

/**
 * The fault-injection scenarios share this: a Redis of their own, real
 * worker processes with the recording handler, and the final check that
 * every order's handler ran exactly once successfully and that Redis
 * recorded it so.
 */
export interface Scenario {
  redis: TestRedis
  config: Config
  store: StoreContext
  record: string
  env: Record<string, string>
  workers: Child[]
  startWorkers: (n: number, extraEnv?: Record<string, string>) => Promise<Child[]>
}

export async function scenario (t: Test, opts: { redis?: TestRedisOptions, env?: Record<string, string> } = {}): Promise<Scenario> {
  const redis = await startRedis(opts.redis)
  const config = testConfig(redis.url)
  const store = testStore(config)
  const record = join(tempDir(t, 'fault'), 'calls.jsonl')
  const env = {
    REDIS_URL: redis.url,
    KEY_PREFIX: config.KEY_PREFIX,
    // The worker processes record or follow the same key format as the test's store (TEST_KEY_FORMAT).
    KEY_FORMAT: String(config.KEY_FORMAT),
    EXPIRY_HANDLERS: RECORD_HANDLER,
    RECORD_FILE: record,
    LOG_LEVEL: 'info',
    ...opts.env
  }
  const workers: Child[] = []
  const s: Scenario = {
    redis,
    config,
    store,
    record,
    env,
    workers,
    async startWorkers (n, extraEnv = {}) {
      const started = await Promise.all(Array.from({ length: n }, async () => await startWorker({ ...env, ...extraEnv })))
      workers.push(...started)
      return started
    }
  }
  t.teardown(async () => {
    for (const w of workers) if (w.proc.exitCode === null && w.proc.signalCode === null) w.proc.kill('SIGKILL')
    await closeRedis(store.redis)
    await redis.stop()
  })
  return s
}

/** Creates holds with the given ttl each, `concurrency` at a time. */
export async function createHolds (
  store: StoreContext, count: number, prefix: string, ttlMs: (i: number) => number, concurrency = 200
): Promise<string[]> {
  const ids = Array.from({ length: count }, (_v, i) => `${prefix}-${i}`)
  for (let i = 0; i < ids.length; i += concurrency) {
    await Promise.all(ids.slice(i, i + concurrency).map(async (id, j) =>
      await createHold(store, { id, ttlMs: ttlMs(i + j), payload: { n: i + j } })))
  }
  return ids
}

/**
 * Waits (bounded) until every id has a successful run, then a little longer
 * to catch duplicates; then checks what Redis recorded (expectHandledInRedis).
 * `rerunAllowed` names the ids a second successful run is allowed for: a
 * worker killed right after a handler returned, before its acknowledgement
 * left, runs that order again by design (docs/delivery.md).
 */
export async function expectExactlyOnce (
  t: Test, s: Pick<Scenario, 'record' | 'store'>, ids: string[], timeoutMs: number,
  rerunAllowed: (id: string) => boolean = () => false
): Promise<void> {
  const { record } = s
  const want = new Set(ids)
  await until(() => {
    const counts = successCounts(record)
    for (const id of want) if (!counts.has(id)) return false
    return true
  }, timeoutMs, 100)
  await new Promise((resolve) => setTimeout(resolve, 1500))
  const counts = successCounts(record)
  const lost = ids.filter((id) => !counts.has(id))
  const duplicated = ids.filter((id) => (counts.get(id) ?? 0) > 1 && !rerunAllowed(id))
  const foreign = [...counts.keys()].filter((id) => !want.has(id))
  t.same(lost, [], `none lost of ${ids.length}`)
  t.same(duplicated, [], 'none handled twice')
  t.same(foreign, [], 'no handler ran for an order that should not expire')
  await expectHandledInRedis(t, s, ids)
}

/**
 * The side-effect file shows a handler ran; only Redis shows the run was
 * acknowledged. For each id: the order is `expired` and `handled` on the
 * generation and by the attempt of its successful run, and its job is gone
 * (job hash, queue, dead-letter set). An ack that never landed leaves the
 * order `pending` and its job queued, to run again. Waits up to `settleMs`
 * for acks still on their way.
 */
export async function expectHandledInRedis (
  t: Test, s: Pick<Scenario, 'record' | 'store'>, ids: string[], settleMs = 10_000
): Promise<void> {
  let wrong: string[] = []
  const check = async () => {
    const succeeded = new Map(readRecords(s.record).filter((r) => r.ok).map((r) => [r.id, r]))
    wrong = []
    for (let i = 0; i < ids.length; i += 200) {
      const found = await Promise.all(ids.slice(i, i + 200).map(async (id) => await recordedWrong(s.store, id, succeeded.get(id))))
      wrong.push(...found.filter((w): w is string => w !== undefined))
    }
    return wrong.length === 0
  }
  await until(check, settleMs, 250)
  t.same(wrong.slice(0, 10), [], `Redis records all ${ids.length} handled by their successful attempt, jobs gone (${wrong.length} not)`)
}

async function recordedWrong (store: StoreContext, id: string, run: Recorded | undefined): Promise<string | undefined> {
  if (!run) return `${id}: no successful run`
  const view = await getCheckout(store, id).catch((err: unknown) => String(err))
  if (typeof view === 'string') return `${id}: ${view}`
  if (view.status !== 'expired' || view.outcome !== 'handled' || view.handledAt === undefined) {
    return `${id}: status ${view.status}, outcome ${String(view.outcome)}`
  }
  if (view.generation !== run.generation) return `${id}: generation ${view.generation}, but generation ${run.generation} ran`
  if (view.attempts !== run.attempt) return `${id}: ${String(view.attempts)} attempts recorded, but attempt ${run.attempt} succeeded`
  const k = store.keys.order(id)
  const member = `${view.generation}:${id}`
  const [job, queued, dead] = await Promise.all([store.redis.exists(k.job(member)), store.redis.zscore(k.jobs, member), store.redis.zscore(k.dead, member)])
  if (job !== 0 || queued !== null || dead !== null) return `${id}: job left behind (hash ${job}, queued ${String(queued)}, dead ${String(dead)})`
  return undefined
}
