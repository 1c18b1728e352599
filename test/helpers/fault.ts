import { join } from 'node:path'
import type { Test } from 'tap'
import type { Config } from '../../src/config.js'
import { closeRedis } from '../../src/redis/connection.js'
import { createHold } from '../../src/store/checkout-store.js'
import type { StoreContext } from '../../src/store/context.js'
import { testConfig } from './app.js'
import { RECORD_HANDLER, startWorker, successCounts, type Child } from './processes.js'
import { startRedis, type TestRedis, type TestRedisOptions } from './redis.js'
import { tempDir } from './temp.js'
import { testStore, until } from './worker.js'

/**
 * The fault-injection scenarios share this: a Redis of their own, real
 * worker processes with the recording handler, and the final check that
 * every order's handler ran exactly once successfully.
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

/** Waits (bounded) until every id has a successful run, then a little longer to catch duplicates. */
export async function expectExactlyOnce (t: Test, record: string, ids: string[], timeoutMs: number): Promise<void> {
  const want = new Set(ids)
  await until(() => {
    const counts = successCounts(record)
    for (const id of want) if (!counts.has(id)) return false
    return true
  }, timeoutMs, 100)
  await new Promise((resolve) => setTimeout(resolve, 1500))
  const counts = successCounts(record)
  const lost = ids.filter((id) => !counts.has(id))
  const duplicated = ids.filter((id) => (counts.get(id) ?? 0) > 1)
  const foreign = [...counts.keys()].filter((id) => !want.has(id))
  t.same(lost, [], `none lost of ${ids.length}`)
  t.same(duplicated, [], 'none handled twice')
  t.same(foreign, [], 'no handler ran for an order that should not expire')
}
