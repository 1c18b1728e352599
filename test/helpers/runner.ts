import { pino } from 'pino'
import { Runner, type RunnerOptions } from '../../src/expiry/runner.js'
import { createWorkerMetrics } from '../../src/metrics/worker-metrics.js'
import { createHold } from '../../src/store/checkout-store.js'
import type { StoreContext } from '../../src/store/context.js'
import { type Claimant, type ExpiryJob } from '../../src/store/expiry-jobs.js'
import { until } from './worker.js'
import { claimAsOwner } from './own.js'

/**
 * A runner on a test's store, without a sweeper or heartbeat: the test
 * claims jobs itself (claimFor) and hands them to runner.start.
 */
export function testRunner (store: StoreContext, overrides: Partial<RunnerOptions> = {}): Runner {
  return new Runner({
    store,
    handlers: [],
    claimant: { token: 'runner-test' },
    maxAttempts: 5,
    backoffMs: 1000,
    handlerTimeoutMs: 10_000,
    safetyNetMs: 120_000,
    concurrency: 10,
    log: pino({ level: 'silent' }),
    metrics: createWorkerMetrics(),
    serverNow: () => Date.now(),
    onIdle: () => {},
    ...overrides
  })
}

let seq = 1

/** The claimant a test runner's jobs are claimed for. */
export const claimantOf = (token = 'runner-test', maxAttempts = 5): Claimant =>
  ({ token, runningMs: 120_000, maxAttempts })

/** Claims the due job of `id` (its hold already expired, or a retry due now) for the claimant; waits up to 3 s for it. */
export async function claimFor (store: StoreContext, id: string, claimant = claimantOf()): Promise<ExpiryJob> {
  const shard = store.keys.shardOf(id)
  let job: ExpiryJob | undefined
  await until(async () => {
    const { jobs } = await claimAsOwner(store, shard, 100, claimant, seq++)
    job = jobs.find((j) => j.id === id)
    return job !== undefined
  }, 3000, 10)
  if (!job) throw new Error(`no due job for ${id}`)
  return job
}

/** A hold that runs out at once, claimed for the claimant: its first attempt. */
export async function expiredJob (store: StoreContext, id: string, claimant = claimantOf()): Promise<ExpiryJob> {
  await createHold(store, { id, ttlMs: 1 })
  return await claimFor(store, id, claimant)
}
