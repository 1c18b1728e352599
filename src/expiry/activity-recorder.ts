import { hostname } from 'node:os'
import type { Logger } from 'pino'
import type { JobSource, RunOutcome, TriggerLabel, WorkerMetrics } from '../metrics/worker-metrics.js'
import {
  forgetWorker, latenessBucket, MINUTE_MS, recordActivity, type MinuteCounts, type RunRecord, type WorkerState
} from '../store/activity.js'
import type { StoreContext } from '../store/context.js'
import type { RunEnd } from './runner.js'

/**
 * Gathers what the dashboard shows about this worker (runs by trigger and
 * outcome, first-run lateness, finished runs, its own state) in memory and
 * writes it to Redis about once a second (src/store/activity.ts). A flush
 * that fails keeps its counts for the next one; runs beyond MAX_PENDING_RUNS
 * between two flushes are left out of the timelines (the counts still hold).
 */
export interface ActivityRecorderOptions {
  store: StoreContext
  token: string
  concurrency: number
  log: Logger
  /** Redis server time now (ms): buckets and reports are on the clock deadlines are written with. */
  serverNow: () => number
  state: () => { ready: boolean, subscriber: boolean, masters: string[], running: number }
  flushEveryMs?: number
}

export interface ActivityRecorder {
  /** The worker's metrics, also counting into the activity buckets: pass this to the runner. */
  metrics: (inner: WorkerMetrics) => WorkerMetrics
  onRunEnd: (end: RunEnd) => void
  start: () => void
  /** Flushes once more and removes this worker's state entry. */
  stop: () => Promise<void>
}

const MAX_PENDING_RUNS = 500

export function createActivityRecorder (opts: ActivityRecorderOptions): ActivityRecorder {
  let counts: MinuteCounts = new Map()
  let runs: RunRecord[] = []
  let timer: NodeJS.Timeout | undefined
  let flushing: Promise<void> = Promise.resolve()
  let startedAt = 0

  const add = (field: string, n = 1) => {
    const minute = Math.floor(opts.serverNow() / MINUTE_MS)
    let fields = counts.get(minute)
    if (!fields) counts.set(minute, fields = new Map())
    fields.set(field, (fields.get(field) ?? 0) + n)
  }

  const flush = async () => {
    flushing = flushing.then(async () => {
      const taken = { counts, runs }
      counts = new Map()
      runs = []
      const state: WorkerState = {
        token: opts.token, pid: process.pid, host: hostname(), at: opts.serverNow(), startedAt, concurrency: opts.concurrency, ...opts.state()
      }
      try {
        await recordActivity(opts.store, taken.counts, state, taken.runs)
      } catch (err) {
        // Kept for the next flush: counts add up, runs wait (within their bound).
        for (const [minute, fields] of taken.counts) for (const [field, n] of fields) {
          const mine = counts.get(minute) ?? new Map<string, number>()
          mine.set(field, (mine.get(field) ?? 0) + n)
          counts.set(minute, mine)
        }
        runs = [...taken.runs, ...runs].slice(-MAX_PENDING_RUNS)
        opts.log.debug({ err }, 'could not record the dashboard activity')
      }
    })
    await flushing
  }

  return {
    metrics: (inner) => ({
      ...inner,
      late: (by: TriggerLabel, seconds: number) => {
        inner.late(by, seconds)
        add(`l:${latenessBucket(seconds * 1000)}`)
      },
      outcome: (outcome: RunOutcome, source: JobSource) => {
        inner.outcome(outcome, source)
        add(`r:${source}`)
        add(`o:${outcome}`)
      }
    }),
    onRunEnd: (end) => {
      if (runs.length >= MAX_PENDING_RUNS) return
      runs.push({
        id: end.job.id,
        generation: end.job.generation,
        attempt: end.job.attempt,
        worker: opts.token,
        source: end.source,
        outcome: end.outcome,
        durationMs: Math.round(end.durationMs * 10) / 10,
        error: end.error,
        at: opts.serverNow()
      })
    },
    start: () => {
      startedAt = opts.serverNow()
      timer = setInterval(() => { void flush() }, opts.flushEveryMs ?? 1000)
      timer.unref()
      void flush()
    },
    async stop () {
      clearInterval(timer)
      await flush()
      await forgetWorker(opts.store, opts.token).catch((err: unknown) => opts.log.debug({ err }, 'could not remove the worker state'))
    }
  }
}
