import { randomUUID } from 'node:crypto'
import type { Logger } from 'pino'
import type { Config } from '../config.js'
import type { WorkerMetrics } from '../metrics/worker-metrics.js'
import type { StoreContext } from '../store/context.js'
import type { Claimant } from '../store/expiry-jobs.js'
import { ABORT_GRACE_MS } from './abortable.js'
import type { NamedHandler } from './handlers.js'
import { Heartbeat } from './heartbeat.js'
import { Runner, type RunnerOptions } from './runner.js'
import { Sweeper } from './sweeper.js'

/**
 * The claim-and-run machinery of one claimant: the sweeper claims due jobs
 * (fenced by the claimant's token and each job's attempt), the heartbeat
 * keeps those claims alive, the runner calls the handlers and records each
 * outcome. The worker process runs one for its whole life; the serverless
 * sweep (src/expiry/sweep-once.ts) one per invocation.
 */
export interface ExpiryPipeline {
  claimant: Claimant
  runner: Runner
  heartbeat: Heartbeat
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
    heartbeatTtlMs: config.EXPIRY_LEASE_MS,
    // The safety net: a live worker has aborted and recorded a run long before this.
    runningMs: config.EXPIRY_HANDLER_TIMEOUT_MS + ABORT_GRACE_MS + config.EXPIRY_LEASE_MS,
    maxAttempts: config.EXPIRY_MAX_ATTEMPTS
  }
  const runner: Runner = new Runner({
    store,
    handlers,
    token: claimant.token,
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
  const heartbeat = new Heartbeat({
    store,
    token: claimant.token,
    leaseMs: config.EXPIRY_LEASE_MS,
    intervalMs: config.EXPIRY_HEARTBEAT_MS,
    log,
    onLost: (shard, reason, countsAttempt) => runner.abandonShard(shard, reason, countsAttempt),
    onReleased: (shard) => sweeper.takeOver(shard)
  })
  const sweeper: Sweeper = new Sweeper({
    store,
    claimant,
    pollMs: config.EXPIRY_POLL_MS,
    capacity: () => runner.capacity(),
    idle: () => runner.size === 0,
    refillAt: Math.max(1, Math.floor(config.EXPIRY_CONCURRENCY / 8)),
    run: (job, foundBy) => runner.start(job, foundBy),
    renewed: (shard, sentAt, registered) => heartbeat.renewed(shard, sentAt, registered),
    log,
    metrics
  })
  return { claimant, runner, heartbeat, sweeper }
}
