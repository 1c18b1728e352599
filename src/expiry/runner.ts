import type { Logger } from 'pino'
import type { StoreContext } from '../store/context.js'
import { ackJob, failJob, renewLease, type ExpiryJob, type Lease } from '../store/expiry-jobs.js'
import type { ExpiryEvent, NamedHandler } from './handlers.js'

/**
 * Runs the handlers of claimed expiry jobs, keeps their leases alive while
 * they run, and records the outcome: acknowledged, retried with backoff, or
 * dead-lettered after the last attempt.
 */
export interface RunnerOptions {
  store: StoreContext
  handlers: NamedHandler[]
  lease: Lease
  maxAttempts: number
  backoffMs: number
  handlerTimeoutMs: number
  concurrency: number
  log: Logger
  /** Called whenever a job finishes and a slot frees up. */
  onIdle: () => void
}

export interface RunnerStats {
  handled: number
  retried: number
  dead: number
  leaseLost: number
}

/** Exponential backoff with "equal jitter": half fixed, half random, capped at one hour. */
export function backoffDelay (baseMs: number, attempt: number, random = Math.random): number {
  const exp = Math.min(baseMs * 2 ** Math.max(0, attempt - 1), 3_600_000)
  return Math.round(exp / 2 + random() * exp / 2)
}

export class Runner {
  readonly stats: RunnerStats = { handled: 0, retried: 0, dead: 0, leaseLost: 0 }
  private readonly running = new Map<string, { promise: Promise<void>, abort: AbortController }>()

  constructor (private readonly opts: RunnerOptions) {}

  get size (): number {
    return this.running.size
  }

  capacity (): number {
    return this.opts.concurrency - this.running.size
  }

  start (job: ExpiryJob, foundBy: string): void {
    if (this.running.has(job.member)) return
    const abort = new AbortController()
    const promise = this.execute(job, foundBy, abort).finally(() => {
      this.running.delete(job.member)
      this.opts.onIdle()
    })
    this.running.set(job.member, { promise, abort })
  }

  /** Waits for running handlers; after timeoutMs aborts them and returns (their leases then lapse). */
  async drain (timeoutMs: number): Promise<boolean> {
    const all = Promise.allSettled([...this.running.values()].map((r) => r.promise))
    let timer: NodeJS.Timeout | undefined
    const timedOut = new Promise<'timeout'>((resolve) => { timer = setTimeout(() => resolve('timeout'), timeoutMs) })
    const result = await Promise.race([all, timedOut])
    clearTimeout(timer)
    if (result !== 'timeout') return true
    for (const r of this.running.values()) r.abort.abort(new Error('worker is shutting down'))
    return false
  }

  private async execute (job: ExpiryJob, foundBy: string, abort: AbortController): Promise<void> {
    const { store, lease, log } = this.opts
    const idempotencyKey = `${job.id}:${job.generation}`
    const jobLog = log.child({ orderId: job.id, generation: job.generation, attempt: job.attempt })
    const event: ExpiryEvent = {
      id: job.id,
      payload: job.payload,
      deadline: new Date(job.deadline).toISOString(),
      expiredAt: new Date(job.expiredAt).toISOString(),
      attempt: job.attempt,
      generation: job.generation,
      idempotencyKey
    }
    jobLog.debug({ lateMs: Date.now() - job.deadline, foundBy }, 'running expiry handlers')
    const renew = setInterval(() => {
      renewLease(store, job, lease).then((held) => {
        if (!held) jobLog.warn('lease lost while the handler runs: another worker may run it again')
      }, (err: unknown) => jobLog.debug({ err }, 'lease renewal failed'))
    }, Math.max(250, Math.floor(lease.leaseMs / 3)))

    let error: unknown
    try {
      await this.runHandlers(event, jobLog, abort)
    } catch (err) {
      error = err
    } finally {
      clearInterval(renew)
    }
    try {
      await this.record(job, lease.token, error, jobLog)
    } catch (err) {
      // Redis refused the outcome: the lease lapses and the job is run again.
      jobLog.error({ err }, 'could not record the handler outcome; the order will be handled again')
    }
  }

  private async runHandlers (event: ExpiryEvent, log: Logger, abort: AbortController): Promise<void> {
    const timer = setTimeout(() => abort.abort(new Error(`handler timed out after ${this.opts.handlerTimeoutMs} ms`)), this.opts.handlerTimeoutMs)
    const aborted = new Promise<never>((_resolve, reject) => {
      abort.signal.addEventListener('abort', () => reject(abort.signal.reason), { once: true })
    })
    aborted.catch(() => {})
    try {
      for (const h of this.opts.handlers) {
        await Promise.race([h.handle(event, { log: log.child({ handler: h.name }), signal: abort.signal }), aborted])
      }
    } finally {
      clearTimeout(timer)
    }
  }

  private async record (job: ExpiryJob, token: string, error: unknown, log: Logger): Promise<void> {
    const { store, maxAttempts, backoffMs } = this.opts
    if (error === undefined) {
      if (await ackJob(store, job, token)) {
        this.stats.handled++
        log.debug('expiry handled')
      } else {
        this.stats.leaseLost++
        log.warn('handler finished after its lease was taken over; another worker has run it too')
      }
      return
    }
    const message = error instanceof Error ? error.message : String(error)
    const delay = backoffDelay(backoffMs, job.attempt)
    const outcome = await failJob(store, job, token, message, maxAttempts, delay)
    if (outcome === 'dead') {
      this.stats.dead++
      log.error({ err: error }, 'expiry handler failed for the last time: order moved to the dead-letter set')
    } else if (outcome === 'retry') {
      this.stats.retried++
      log.warn({ err: error, retryInMs: delay }, 'expiry handler failed; will retry')
    } else {
      this.stats.leaseLost++
      log.warn({ err: error }, 'handler failed after its lease was taken over')
    }
  }
}
