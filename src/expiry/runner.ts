import { performance } from 'node:perf_hooks'
import type { Logger } from 'pino'
import type { JobSource, RunOutcome, WorkerMetrics } from '../metrics/worker-metrics.js'
import type { StoreContext } from '../store/context.js'
import { failRun, releaseJobs, type ExpiryJob } from '../store/expiry-jobs.js'
import { AckBatcher } from './ack-batcher.js'
import { settledOrGivenUp } from './abortable.js'
import { lastErrorMessage } from './error-message.js'
import { sendUntilAnswered } from './report-retry.js'
import type { ExpiryEvent, HandlerContext, NamedHandler } from './handlers.js'

/**
 * Runs the handlers of claimed expiry jobs and records the outcome:
 * acknowledged, retried with backoff, or dead-lettered after the last
 * attempt. A run whose claim is lost (the worker's heartbeat lapsed, or it
 * shuts down) is aborted through its AbortSignal and given back instead.
 */
export interface RunnerOptions {
  store: StoreContext
  handlers: NamedHandler[]
  /**
   * Holds the worker's token: with the job's attempt, the fencing token of
   * every outcome. Read at each outcome: a worker that was reaped takes a
   * new token (src/expiry/heartbeat.ts), and every run it had was abandoned then.
   */
  claimant: { readonly token: string }
  maxAttempts: number
  /** The first retry's delay, doubled for each further attempt of a set (with jitter; see failRun). */
  backoffMs: number
  handlerTimeoutMs: number
  /**
   * A claimed job is due again this long after its claim even while its
   * worker lives (Claimant.runningMs). An outcome Redis refuses is sent
   * again until then at most: later, the job is another claim's.
   */
  safetyNetMs: number
  concurrency: number
  log: Logger
  metrics: WorkerMetrics
  /** Redis server time now (ms): deadlines are written with it, so lateness is measured with it. */
  serverNow: () => number
  /** Called whenever a handler run ends and its slot frees up (its outcome may still be on its way to Redis). */
  onIdle: () => void
  /** Told of every run once its outcome is recorded (the dashboard's activity, src/expiry/activity-recorder.ts). */
  onRunEnd?: (end: RunEnd) => void
}

export interface RunEnd {
  job: ExpiryJob
  source: JobSource
  outcome: RunOutcome
  durationMs: number
  error?: string | undefined
}

export interface RunnerStats {
  handled: number
  retried: number
  dead: number
  /** Runs given up because the claim was lost or the worker stopped; another worker runs them. */
  abandoned: number
  /** Outcomes Redis refused because another worker had taken the claim over. */
  claimLost: number
}

interface Run {
  job: ExpiryJob
  /** `<member>#<attempt>`: the claim; its key in the running map. */
  key: string
  /** performance.now() when it started: the handler timeout counts from here, on the monotonic clock. */
  startedAt: number
  /** Created on first use: most runs finish without anyone asking for their signal. */
  controller?: AbortController
  /** Created on first use, like the controller: a child logger per run is costly at thousands a second. */
  log?: Logger
  /** Why the run was given up while its handlers ran; set once, then its outcome is never recorded. */
  abandoned?: string
  /** Its handlers have ended: what is left is to record the outcome, which the fencing token guards. */
  handlerDone?: boolean
  /** Given up for a reason that is not the handler's (the worker stops, Redis out of reach): the attempt is given back with the claim. */
  interrupted?: boolean
  promise?: Promise<void>
  /** The handler running now; names the one that failed. */
  handler?: string
}

/** How a run's handlers ended. Success is this value, never the absence of an error: `throw undefined` failed. */
type HandlerResult = { ok: true } | { ok: false, error: unknown }

function signalOf (run: Run): AbortSignal {
  run.controller ??= new AbortController()
  return run.controller.signal
}

function abortRun (run: Run, reason: Error): void {
  run.controller ??= new AbortController()
  run.controller.abort(reason)
}

export class Runner {
  readonly stats: RunnerStats = { handled: 0, retried: 0, dead: 0, abandoned: 0, claimLost: 0 }
  /** In start order, which is also timeout order: every run gets the same handler timeout. */
  private readonly running = new Map<string, Run>()
  private readonly acks: AckBatcher
  /** One timer for every run's handler timeout, armed for the oldest run. */
  private timeoutTimer: NodeJS.Timeout | undefined
  /** Runs in `running` whose handlers have not finished yet. */
  private handlersRunning = 0
  /** The worker stopped waiting for its runs: outcomes Redis refuses are no longer sent again. */
  private stopped = false

  constructor (private readonly opts: RunnerOptions) {
    this.acks = new AckBatcher(opts.store, opts.claimant)
  }

  /** Runs whose handlers run now. */
  get size (): number {
    return this.handlersRunning
  }

  /**
   * Handlers it can start now. A slot is taken while handlers run, not
   * while the outcome travels to Redis: EXPIRY_CONCURRENCY bounds the work
   * handlers do at once, and a round trip must not cap the rate.
   */
  capacity (): number {
    return this.opts.concurrency - this.handlersRunning
  }

  start (job: ExpiryJob, foundBy: JobSource): void {
    // Keyed by claim (member and attempt): the same claim handed back by a
    // resent request runs once, while the next attempt of an order whose last
    // run has recorded its outcome but not yet left this map still runs.
    const key = `${job.member}#${job.attempt}`
    if (this.running.has(key)) return
    const run: Run = { job, key, startedAt: performance.now() }
    this.running.set(key, run)
    this.handlersRunning++
    this.armTimeout()
    run.promise = this.execute(run, foundBy).finally(() => {
      this.running.delete(key)
      if (this.running.size === 0) this.disarmTimeout()
    })
  }

  /**
   * The worker's claims are lost: abort its runs; their
   * outcome is not recorded and they are given back. `countsAttempt`: the
   * attempt counts when this process is to blame (it stalled past its lease),
   * so a handler that stalls its worker every time still ends dead; not when
   * contact with Redis was lost, which is not the handler's doing.
   */
  abandonAll (reason: string, countsAttempt = true): void {
    for (const run of this.running.values()) this.abandon(run, reason, countsAttempt)
  }

  /**
   * Waits for running handlers; after timeoutMs aborts them and returns false
   * (the caller releases their claims). `countsAttempt`: the runs still going
   * then are given back as counted attempts (the worker stops because a
   * handler crashed it, and it may be one of them), not as interrupted.
   */
  async drain (timeoutMs: number, countsAttempt = false): Promise<boolean> {
    const all = Promise.allSettled([...this.running.values()].map(async (r) => await r.promise))
    let timer: NodeJS.Timeout | undefined
    const timedOut = new Promise<'timeout'>((resolve) => { timer = setTimeout(() => resolve('timeout'), timeoutMs) })
    const result = await Promise.race([all, timedOut])
    clearTimeout(timer)
    if (result !== 'timeout') return true
    this.stopped = true
    for (const run of this.running.values()) this.abandon(run, countsAttempt ? 'the worker crashed' : 'the worker is shutting down', countsAttempt)
    return false
  }

  private armTimeout (): void {
    if (this.timeoutTimer) return
    const oldest = this.running.values().next().value
    if (oldest) this.timeOutIn(oldest.startedAt + this.opts.handlerTimeoutMs - performance.now())
  }

  private timeOutIn (ms: number): void {
    this.timeoutTimer = setTimeout(() => {
      this.timeoutTimer = undefined
      this.timeOut()
    }, Math.max(0, ms))
  }

  private disarmTimeout (): void {
    clearTimeout(this.timeoutTimer)
    this.timeoutTimer = undefined
  }

  /** Aborts every run past the handler timeout (the oldest come first), then re-arms for the next. */
  private timeOut (): void {
    const { handlerTimeoutMs } = this.opts
    const now = performance.now()
    for (const run of this.running.values()) {
      // Runs aborted before stay here until their handlers stop: re-arm for the first one still in time.
      if (run.startedAt + handlerTimeoutMs > now) {
        this.timeOutIn(run.startedAt + handlerTimeoutMs - now)
        return
      }
      if (!run.controller?.signal.aborted) abortRun(run, new Error(`handler timed out after ${handlerTimeoutMs} ms`))
    }
  }

  private logOf (run: Run): Logger {
    const { job } = run
    run.log ??= this.opts.log.child({ orderId: job.id, generation: job.generation, attempt: job.attempt })
    return run.log
  }

  private abandon (run: Run, reason: string, countsAttempt: boolean): void {
    // A finished run's outcome is still sent: Redis accepts it only while the claim is ours.
    if (run.abandoned !== undefined || run.handlerDone) return
    run.abandoned = reason
    run.interrupted = !countsAttempt
    abortRun(run, new Error(`run abandoned: ${reason}`))
    this.logOf(run).warn({ reason }, 'expiry handler aborted; another worker will run it')
  }

  private async execute (run: Run, foundBy: JobSource): Promise<void> {
    const { job } = run
    const event: ExpiryEvent = {
      id: job.id,
      payload: job.payload,
      deadline: new Date(job.deadline).toISOString(),
      expiredAt: new Date(job.expiredAt).toISOString(),
      attempt: job.attempt,
      generation: job.generation,
      idempotencyKey: this.opts.store.keys.idempotencyKey(job.id, job.generation)
    }
    const lateMs = this.opts.serverNow() - job.deadline
    // Lateness is the delay of the first run; retries are late by design (backoff).
    if (foundBy !== 'retry') this.opts.metrics.late(foundBy, Math.max(0, lateMs) / 1000)
    if (this.opts.log.isLevelEnabled('debug')) this.logOf(run).debug({ lateMs, foundBy }, 'running expiry handlers')
    let result: HandlerResult
    let durationMs = 0
    const startedAt = performance.now()
    try {
      const pending = this.runHandlers(run, event)
      if (pending) await pending
      result = { ok: true }
    } catch (error) {
      result = { ok: false, error }
    } finally {
      durationMs = performance.now() - startedAt
      this.opts.metrics.handlerDuration(durationMs / 1000)
      run.handlerDone = true
      this.handlersRunning--
      this.opts.onIdle()
    }
    try {
      if (run.abandoned !== undefined) {
        // Abandoned whether or not Redis takes the release: either way another worker runs it.
        this.count('abandoned', foundBy)
        this.opts.onRunEnd?.({ job, source: foundBy, outcome: 'abandoned', durationMs, error: run.abandoned })
        await this.giveBack(run)
        return
      }
      if (!result.ok) this.opts.metrics.handlerFailed(run.handler ?? 'unknown')
      const outcome = await this.record(run, result)
      this.count(outcome, foundBy)
      this.opts.onRunEnd?.({ job, source: foundBy, outcome, durationMs, error: result.ok ? undefined : lastErrorMessage(result.error) })
    } catch (err) {
      // Given up (the worker stopped, or the safety net passed): the job is due again and runs again.
      this.logOf(run).error({ err }, 'could not record the handler outcome; the order will be handled again')
    }
  }

  /**
   * Calls the handlers in order. While they return synchronously this stays
   * synchronous (no promise, no signal, no logger made); from the first
   * handler that returns a promise on, it continues asynchronously.
   */
  private runHandlers (run: Run, event: ExpiryEvent, from = 0): Promise<void> | undefined {
    const { handlers } = this.opts
    for (let i = from; i < handlers.length; i++) {
      const h = handlers[i] as NamedHandler
      if (run.controller?.signal.aborted) throw run.controller.signal.reason
      run.handler = h.name
      const result = h.handle(event, this.contextOf(run, h.name))
      if (result) return this.awaitHandler(run, event, result, i)
    }
    return undefined
  }

  private async awaitHandler (run: Run, event: ExpiryEvent, result: Promise<void>, index: number): Promise<void> {
    await settledOrGivenUp(Promise.resolve(result), signalOf(run), () => this.logOf(run))
    await this.runHandlers(run, event, index + 1)
  }

  /** The handler's context; its logger and signal are made when the handler first asks for them. */
  private contextOf (run: Run, handler: string): HandlerContext {
    return new RunContext(() => this.logOf(run), run, handler)
  }

  /** The outcome in both the log counters and the metrics. */
  private count (outcome: RunOutcome, foundBy: JobSource): void {
    this.stats[outcome === 'claim_lost' ? 'claimLost' : outcome]++
    this.opts.metrics.outcome(outcome, foundBy)
  }

  private async giveBack (run: Run): Promise<void> {
    const release = { job: run.job, how: run.interrupted ? 'interrupted' as const : 'abandoned' as const }
    await this.send(run, 'release', async () => await releaseJobs(this.opts.store, run.job.shard, this.opts.claimant.token, [release]))
  }

  /** Sends an outcome until Redis answers it, while that can still matter. */
  private async send<T> (run: Run, what: string, call: () => Promise<T>): Promise<T> {
    const giveUp = () => {
      if (this.stopped) return 'the worker stopped'
      if (performance.now() > run.startedAt + this.opts.safetyNetMs) return "the claim's safety net has passed"
      return undefined
    }
    return await sendUntilAnswered(call, giveUp, () => this.logOf(run), what)
  }

  private async record (run: Run, result: HandlerResult): Promise<RunOutcome> {
    const { job } = run
    const { store, maxAttempts, backoffMs } = this.opts
    if (result.ok) {
      if (await this.send(run, 'acknowledgement', async () => await this.acks.ack(job))) {
        if (this.opts.log.isLevelEnabled('debug')) this.logOf(run).debug('expiry handled')
        return 'handled'
      }
      this.logOf(run).warn('handler finished after its claim was taken over; the other run owns the outcome')
      return 'claim_lost'
    }
    // The handler that failed (or was running at the timeout), as the failure metric names it.
    const log = this.logOf(run).child({ handler: run.handler ?? 'unknown' })
    const { error } = result
    const message = lastErrorMessage(error)
    const { outcome, retryInMs } = await this.send(run, 'failure', async () => await failRun(store, job, this.opts.claimant.token, message, maxAttempts, backoffMs))
    if (outcome === 'dead') {
      log.error({ err: error }, 'expiry handler failed for the last time: order moved to the dead-letter set')
      return 'dead'
    }
    if (outcome === 'retry') {
      log.warn({ err: error, retryInMs }, 'expiry handler failed; will retry')
      return 'retried'
    }
    log.warn({ err: error }, 'handler failed after its claim was taken over')
    return 'claim_lost'
  }
}

/** A handler's context (one per handler call, so kept small): logger and signal made on first use. */
class RunContext implements HandlerContext {
  private logger: Logger | undefined

  constructor (private readonly runLog: () => Logger, private readonly run: Run, private readonly handler: string) {}

  get log (): Logger {
    this.logger ??= this.runLog().child({ handler: this.handler })
    return this.logger
  }

  get signal (): AbortSignal {
    return signalOf(this.run)
  }
}
