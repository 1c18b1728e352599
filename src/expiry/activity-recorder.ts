import { hostname } from 'node:os'
import type { Logger } from 'pino'
import type { JobSource, RunOutcome, TriggerLabel, WorkerMetrics } from '../metrics/worker-metrics.js'
import {
  forgetWorker, LATENESS_BOUNDS_MS, latenessBucket, MINUTE_MS, recordActivity, type MinuteCounts, type RunRecord, type WorkerState
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

/**
 * The fields of a minute's counts (src/store/activity.ts), by index: runs by
 * source, by outcome, first runs by lateness bucket. A run is counted in a
 * slot of an array, and the field names are used only when a flush turns
 * the minute into its map.
 */
const SOURCES: readonly JobSource[] = ['event', 'sweep', 'retry']
const OUTCOMES: readonly RunOutcome[] = ['handled', 'retried', 'dead', 'abandoned', 'claim_lost']
const FIELDS = [
  ...SOURCES.map((source) => `r:${source}`),
  ...OUTCOMES.map((outcome) => `o:${outcome}`),
  // latenessBucket answers 0 to LATENESS_BOUNDS_MS.length (beyond the last bound).
  ...Array.from({ length: LATENESS_BOUNDS_MS.length + 1 }, (_v, bucket) => `l:${bucket}`)
]
const SOURCE_SLOT = Object.fromEntries(SOURCES.map((source, i) => [source, i])) as Record<JobSource, number>
const OUTCOME_SLOT = Object.fromEntries(OUTCOMES.map((outcome, i) => [outcome, SOURCES.length + i])) as Record<RunOutcome, number>
const LATENESS_SLOT = SOURCES.length + OUTCOMES.length

/** Adds `counts` (per field slot) of `minute` to `into`. */
function addMinute (into: MinuteCounts, minute: number, counts: Float64Array): void {
  let fields = into.get(minute)
  counts.forEach((n, slot) => {
    if (n === 0) return
    if (!fields) into.set(minute, fields = new Map())
    const field = FIELDS[slot] as string
    fields.set(field, (fields.get(field) ?? 0) + n)
  })
}

export function createActivityRecorder (opts: ActivityRecorderOptions): ActivityRecorder {
  /** Counts of minutes before the current one (and of a flush that failed), as recordActivity takes them. */
  let counts: MinuteCounts = new Map()
  /** The current minute's counts, per field slot. */
  let minute = Number.NaN
  let current = new Float64Array(FIELDS.length)
  let runs: RunRecord[] = []
  let timer: NodeJS.Timeout | undefined
  let flushing: Promise<void> = Promise.resolve()
  let startedAt = 0

  /** The current minute's slots; a new minute moves the last one's into `counts`. */
  const slots = (): Float64Array => {
    const now = Math.floor(opts.serverNow() / MINUTE_MS)
    if (now !== minute) {
      if (!Number.isNaN(minute)) addMinute(counts, minute, current)
      minute = now
      current = new Float64Array(FIELDS.length)
    }
    return current
  }

  /** Everything counted so far, and start again from nothing. */
  const take = (): MinuteCounts => {
    const taken = counts
    if (!Number.isNaN(minute)) addMinute(taken, minute, current)
    counts = new Map()
    minute = Number.NaN
    current = new Float64Array(FIELDS.length)
    return taken
  }

  const flush = async () => {
    flushing = flushing.then(async () => {
      const taken = { counts: take(), runs }
      runs = []
      const state: WorkerState = {
        token: opts.token, pid: process.pid, host: hostname(), at: opts.serverNow(), startedAt, concurrency: opts.concurrency, ...opts.state()
      }
      try {
        await recordActivity(opts.store, taken.counts, state, taken.runs)
      } catch (err) {
        // Kept for the next flush: counts add up, runs wait (within their bound).
        for (const [at, fields] of taken.counts) for (const [field, n] of fields) {
          const mine = counts.get(at) ?? new Map<string, number>()
          mine.set(field, (mine.get(field) ?? 0) + n)
          counts.set(at, mine)
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
        const counts = slots()
        const slot = LATENESS_SLOT + latenessBucket(seconds * 1000)
        counts[slot] = (counts[slot] as number) + 1
      },
      outcome: (outcome: RunOutcome, source: JobSource) => {
        inner.outcome(outcome, source)
        const counts = slots()
        const bySource = SOURCE_SLOT[source]
        const byOutcome = OUTCOME_SLOT[outcome]
        counts[bySource] = (counts[bySource] as number) + 1
        counts[byOutcome] = (counts[byOutcome] as number) + 1
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
