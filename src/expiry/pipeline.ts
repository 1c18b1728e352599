import { randomUUID } from 'node:crypto'
import type { Logger } from 'pino'
import type { Config } from '../config.js'
import type { WorkerMetrics } from '../metrics/worker-metrics.js'
import type { StoreContext } from '../store/context.js'
import { leaveAllShards, type Claimant } from '../store/expiry-jobs.js'
import { ABORT_GRACE_MS } from './abortable.js'
import type { NamedHandler } from './handlers.js'
import { Heartbeat } from './heartbeat.js'
import { Ownership } from './ownership.js'
import { Runner, type RunnerOptions } from './runner.js'
import { Sweeper } from './sweeper.js'

/**
 * The claim-and-run machinery of one claimant: the heartbeat keeps it in
 * its layout's membership, the ownership takes the shards the membership
 * assigns to it, the sweeper claims due jobs there (fenced by the shard's
 * owner epoch, then by the claimant's token and each job's attempt), the
 * runner calls the handlers and records each outcome. The worker process runs one for its whole life; the serverless
 * sweep (src/expiry/sweep-once.ts) one per invocation.
 */
export interface ExpiryPipeline {
  claimant: Claimant
  runner: Runner
  heartbeat: Heartbeat
  ownership: Ownership
  sweeper: Sweeper
}

export interface PipelineOptions {
  config: Config
  store: StoreContext
  handlers: NamedHandler[]
  log: Logger
  metrics: WorkerMetrics
  /** The claimant's token; a new random one when not given. */
  token?: string
  /** Called as each run ends (the dashboard's activity recorder). */
  onRunEnd?: RunnerOptions['onRunEnd']
}

export function createExpiryPipeline ({ config, store, handlers, log, metrics, token, onRunEnd }: PipelineOptions): ExpiryPipeline {
  const claimant: Claimant = {
    token: token ?? randomUUID(),
    // The safety net: a live worker has aborted and recorded a run long before this.
    runningMs: config.EXPIRY_HANDLER_TIMEOUT_MS + ABORT_GRACE_MS + config.EXPIRY_LEASE_MS,
    maxAttempts: config.EXPIRY_MAX_ATTEMPTS
  }
  const runner: Runner = new Runner({
    store,
    handlers,
    claimant,
    maxAttempts: config.EXPIRY_MAX_ATTEMPTS,
    backoffMs: config.EXPIRY_BACKOFF_MS,
    handlerTimeoutMs: config.EXPIRY_HANDLER_TIMEOUT_MS,
    safetyNetMs: claimant.runningMs,
    concurrency: config.EXPIRY_CONCURRENCY,
    log,
    metrics,
    onRunEnd,
    // Only called once jobs run, which is after the sweeper below exists.
    serverNow: (): number => sweeper.serverNow(),
    onIdle: () => sweeper.onCapacity()
  })
  const ownership: Ownership = new Ownership({
    store,
    claimant,
    log,
    onAcquired: (shard) => sweeper.acquired(shard),
    onDropped: (shard) => sweeper.dropped(shard),
    onReleased: (shard) => sweeper.takeOver(shard)
  })
  const heartbeat = new Heartbeat({
    store,
    claimant,
    leaseMs: config.EXPIRY_LEASE_MS,
    intervalMs: config.EXPIRY_HEARTBEAT_MS,
    log,
    onLost: (reason, countsAttempt) => {
      ownership.dropAll()
      runner.abandonAll(reason, countsAttempt)
    },
    onMembers: (view) => ownership.update(view)
  })
  const sweeper: Sweeper = new Sweeper({
    store,
    claimant,
    pollMs: config.EXPIRY_POLL_MS,
    capacity: () => runner.capacity(),
    idle: () => runner.size === 0,
    refillAt: Math.max(1, Math.floor(config.EXPIRY_CONCURRENCY / 8)),
    run: (job, foundBy) => runner.start(job, foundBy),
    epoch: (shard) => ownership.epoch(shard),
    notOwner: (shard) => {
      ownership.lost(shard)
      // Another worker took it: the membership says at once whether it is to come back here.
      heartbeat.beatNow()
    },
    trusted: () => heartbeat.trusted(),
    log,
    metrics
  })
  return { claimant, runner, heartbeat, ownership, sweeper }
}

/** Joins the membership and starts claiming in the shards it assigns. */
export function startPipeline ({ heartbeat, sweeper }: ExpiryPipeline): void {
  heartbeat.start()
  sweeper.start()
}

/**
 * Stops a pipeline: its shards go to the other workers at once, no more
 * claims (those in flight answered and their jobs given back), running
 * handlers finish within timeoutMs, what still runs is given back (as
 * counted attempts when `crashed`), and it leaves the membership. Returns whether every handler finished and the jobs given back.
 */
export async function stopPipeline (
  { claimant, runner, heartbeat, ownership, sweeper }: ExpiryPipeline, store: StoreContext, timeoutMs: number, crashed: boolean
): Promise<{ drained: boolean, released: number }> {
  // Its shards go to the others now, not when its handlers are done.
  ownership.stop()
  const draining = heartbeat.leave('drain').catch(() => {})
  await sweeper.stop(timeoutMs)
  const drained = await runner.drain(timeoutMs, crashed)
  await draining
  heartbeat.stop()
  const released = await leaveAllShards(store, claimant.token, crashed ? 'abandoned' : 'interrupted')
  // Left only once everything held is given back: the others release what is left of a member that is gone.
  await heartbeat.leave('leave').catch(() => {})
  return { drained, released }
}
