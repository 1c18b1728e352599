import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Logger } from 'pino'
import { ConfigError, type Config } from '../config.js'
import { startEventRelay } from '../events/relay.js'
import type { WorkerMetrics } from '../metrics/worker-metrics.js'
import type { StoreContext } from '../store/context.js'
import { nextDue } from '../store/expiry-jobs.js'
import type { NamedHandler } from './handlers.js'
import { createExpiryPipeline, startPipeline, stopPipeline } from './pipeline.js'
import type { RunnerStats } from './runner.js'

/**
 * One bounded pass of the expiry pipeline, for a scheduled function (AWS
 * Lambda, src/lambda-sweep.ts): the worker's pipeline under a fresh
 * claimant, a member like any worker for the length of the pass (it owns
 * its share of the shards: all of them when no worker runs), so its claims
 * are fenced, retried and dead-lettered exactly as a worker's, and any
 * number of passes and workers may overlap. It claims until nothing is due or until a started handler
 * would no longer have its whole EXPIRY_HANDLER_TIMEOUT_MS before the
 * budget ends, waits for the handlers it started, then gives back whatever
 * it holds and has not run and leaves, `reserveMs` before the budget ends.
 */
export interface SweepOnceOptions {
  config: Config
  store: StoreContext
  handlers: NamedHandler[]
  log: Logger
  metrics: WorkerMetrics
  /** Milliseconds left of the budget (Lambda: context.getRemainingTimeInMillis). */
  remainingMs: () => number
  /** Kept at the end to give back and leave the shards: a few Redis round trips, each bounded by its command timeout. */
  reserveMs?: number
}

export interface SweepReport extends RunnerStats {
  /** Holds this pass recorded as expired. */
  found: number
  /** Jobs it held at the end and gave back (claimed but not run, or still running at the end). */
  released: number
  /** 'idle': nothing was due any more; 'budget': the time ran out first. */
  stoppedBy: 'idle' | 'budget'
}

export const SWEEP_RESERVE_MS = 3000
const IDLE_CHECK_MS = 50

export async function sweepOnce (opts: SweepOnceOptions): Promise<SweepReport> {
  const { config, store, log } = opts
  const reserveMs = opts.reserveMs ?? SWEEP_RESERVE_MS
  const startedAt = performance.now()
  const budgetMs = opts.remainingMs()
  const end = startedAt + budgetMs - reserveMs
  const claimEnd = end - config.EXPIRY_HANDLER_TIMEOUT_MS
  if (claimEnd <= startedAt) {
    throw new ConfigError(`the sweep has ${budgetMs} ms, not more than EXPIRY_HANDLER_TIMEOUT_MS (${config.EXPIRY_HANDLER_TIMEOUT_MS}) ` +
      `+ ${reserveMs} ms: raise the function's timeout or lower EXPIRY_HANDLER_TIMEOUT_MS`)
  }
  const pipeline = createExpiryPipeline(opts)
  const { runner, ownership, sweeper } = pipeline
  const relay = config.EVENT_STREAM ? startEventRelay({ store, log, maxLen: config.EVENT_STREAM_MAXLEN }) : undefined
  startPipeline(pipeline)
  let stoppedBy: SweepReport['stoppedBy'] = 'budget'
  while (performance.now() < claimEnd) {
    await sleep(Math.min(IDLE_CHECK_MS, claimEnd - performance.now()))
    if (sweeper.claiming() || !ownership.settled()) continue
    const due = await dueShards(store, ownership.owned(), log)
    if (due === undefined) continue
    // Without a subscription nobody announces a retry that became due: the sweeper is told here.
    for (const { shard, at } of due) sweeper.onDue(shard, at)
    if (due.length === 0 && runner.size === 0) {
      stoppedBy = 'idle'
      break
    }
  }
  const left = () => Math.max(0, end - performance.now())
  // As the worker closes (worker.ts): claims answered from now on are given back unstarted.
  const { drained, released } = await stopPipeline(pipeline, store, left(), false)
  await relay?.stop()
  const report = { ...runner.stats, found: sweeper.found.sweep + sweeper.found.event, released, stoppedBy }
  if (!drained) log.warn({ released }, 'handlers still running at the end of the sweep were given back for the next one')
  log.info(report, 'expiry sweep done')
  return report
}

/** The owned shards where something is due now (a deadline passed, a job to run) and since when; undefined while Redis does not answer. */
async function dueShards (store: StoreContext, owned: readonly number[], log: Logger): Promise<Array<{ shard: number, at: number }> | undefined> {
  try {
    const shards = await Promise.all(owned.map(async (shard) => ({ shard, ...await nextDue(store, shard) })))
    return shards.filter(({ now, next }) => next !== undefined && next <= now).map(({ shard, next }) => ({ shard, at: next as number }))
  } catch (err) {
    log.debug({ err }, 'could not read the next due times')
    return undefined
  }
}
