import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client'
import { TallyHistogram } from './tally-histogram.js'

/**
 * Every metric the expiry worker exposes, on a registry of its own. The
 * worker gets it passed in like the logger; the sweeper and the runner only
 * call the methods below. What a job records is counted in plain numbers
 * bound here once (histograms: tally-histogram.ts; the runs counter: tallies
 * added to prom-client's counter when it is read), so a job costs a few
 * additions and allocates nothing: prom-client's own `inc` and `observe`
 * build and hash a label object on every call, children or not.
 */
export type TriggerLabel = 'event' | 'sweep'
/** How a job reached the runner: its first run after an event or a sweep, or a later attempt. */
export type JobSource = TriggerLabel | 'retry'
export type RunOutcome = 'handled' | 'retried' | 'dead' | 'abandoned' | 'claim_lost'

/** What the gauges read at scrape time; the worker supplies them once it runs. */
export interface WorkerGaugeSources {
  /** What /readyz answers, so Prometheus can alert on it without probing. */
  ready: () => boolean
  running: () => number
  /** Shards this worker owns now (docs/delivery.md, "Shard ownership"). */
  ownedShards: () => number
  subscriberConnected: () => boolean
  /** Reads Redis; a read that fails or takes longer than SCRAPE_READ_TIMEOUT_MS leaves the last value. */
  pendingHolds: () => Promise<number>
  deadLetters: () => Promise<number>
}

export interface WorkerMetrics {
  readonly registry: Registry
  /** Expiries this worker recorded in one claim, by what triggered the claim. */
  found: (by: TriggerLabel, count: number) => void
  /** A first run started `seconds` after the hold's deadline. */
  late: (by: TriggerLabel, seconds: number) => void
  /** The handlers of one run took `seconds`, whatever the outcome. */
  handlerDuration: (seconds: number) => void
  /** A handler threw or timed out (runs abandoned by the worker are not failures of the handler). */
  handlerFailed: (handler: string) => void
  outcome: (outcome: RunOutcome, source: JobSource) => void
  observe: (sources: WorkerGaugeSources) => void
}

/** Runs of one outcome and source not yet added to prom-client's counter. */
interface Tally {
  n: number
  readonly child: Counter.Internal
}

const SOURCES: readonly JobSource[] = ['event', 'sweep', 'retry']
const OUTCOMES: readonly RunOutcome[] = ['handled', 'retried', 'dead', 'abandoned', 'claim_lost']
/** 1 ms (a sweeper on time) to 60 s (a worker that was down or far behind). */
const LATENESS_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]
/** Handlers call other services: milliseconds to EXPIRY_HANDLER_TIMEOUT_MS (60 s by default). */
const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]
/** A scrape must answer even while Redis does not. */
export const SCRAPE_READ_TIMEOUT_MS = 1000

export function createWorkerMetrics (): WorkerMetrics {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry })
  const registers = [registry]
  let sources: WorkerGaugeSources | undefined

  const found = new Counter({
    name: 'checkout_expiry_found_total',
    help: 'Expiries this worker recorded, by trigger: a keyspace event, or the sweeper (deadline timer, periodic and reconnect sweeps)',
    labelNames: ['found_by'] as const,
    registers
  })
  const runs = new Counter({
    name: 'checkout_expiry_runs_total',
    help: 'Handler runs finished, by outcome and by how the job came (first run after an event or a sweep, or a retry)',
    labelNames: ['outcome', 'found_by'] as const,
    registers,
    // Runs are counted in tallies (below) and added here whenever the counter is read.
    collect () { addTallies() }
  })
  const lateness = new TallyHistogram({
    name: 'checkout_expiry_lateness_seconds',
    help: 'Start of the first handler run minus the hold\'s deadline (worker clock against the deadline Redis recorded)',
    labelNames: ['found_by'] as const,
    buckets: LATENESS_BUCKETS,
    registers
  })
  const duration = new TallyHistogram({
    name: 'checkout_expiry_handler_duration_seconds',
    help: 'Time the handlers of one run took, all handlers of the order together',
    buckets: DURATION_BUCKETS,
    registers
  })
  const failures = new Counter({
    name: 'checkout_expiry_handler_failures_total',
    help: 'Handler runs that threw or timed out, by the handler that failed',
    labelNames: ['handler'] as const,
    registers
  })
  new Gauge({
    name: 'checkout_expiry_ready',
    help: '1 while the worker is ready (/readyz answers 200: subscribed, Redis up, not stopping), else 0',
    registers,
    collect () { this.set(sources?.ready() === true ? 1 : 0) }
  })
  new Gauge({
    name: 'checkout_expiry_running_handlers',
    help: 'Handler runs in progress in this worker',
    registers,
    collect () { if (sources) this.set(sources.running()) }
  })
  new Gauge({
    name: 'checkout_expiry_owned_shards',
    help: 'Shards this worker owns now: only their owner claims there (0 while it starts, stops or lost contact with Redis)',
    registers,
    collect () { if (sources) this.set(sources.ownedShards()) }
  })
  new Gauge({
    name: 'checkout_expiry_subscriber_connected',
    help: '1 while the worker is subscribed to expired keyevents, else 0',
    registers,
    collect () { this.set(sources?.subscriberConnected() === true ? 1 : 0) }
  })
  new Gauge({
    name: 'checkout_expiry_pending_holds',
    help: 'Holds waiting for their deadline, all shards (read from Redis at scrape time; the same in every worker)',
    registers,
    async collect () { await readInto(this, sources?.pendingHolds) }
  })
  new Gauge({
    name: 'checkout_expiry_dead_letters',
    help: 'Orders in the dead-letter sets of all shards (read from Redis at scrape time; the same in every worker)',
    registers,
    async collect () { await readInto(this, sources?.deadLetters) }
  })

  // Every counter series shows from the first scrape (at 0), so rate() and alerts never start from a missing series.
  const zeroed = (child: Counter.Internal) => { child.inc(0); return child }
  const tallies: Tally[] = []
  const bySource = (outcome: RunOutcome) => Object.fromEntries(SOURCES.map((s) => {
    const tally = { n: 0, child: zeroed(runs.labels(outcome, s)) }
    tallies.push(tally)
    return [s, tally]
  })) as Record<JobSource, Tally>
  const outcomes = Object.fromEntries(OUTCOMES.map((o) => [o, bySource(o)])) as Record<RunOutcome, Record<JobSource, Tally>>
  function addTallies (): void {
    for (const tally of tallies) {
      if (tally.n === 0) continue
      tally.child.inc(tally.n)
      tally.n = 0
    }
  }
  const foundBy = { event: zeroed(found.labels('event')), sweep: zeroed(found.labels('sweep')) }
  const lateBy = { event: lateness.series('event'), sweep: lateness.series('sweep') }
  const durations = duration.series()

  return {
    registry,
    found: (by, count) => foundBy[by].inc(count),
    late: (by, seconds) => lateBy[by].observe(seconds),
    handlerDuration: (seconds) => durations.observe(seconds),
    handlerFailed: (handler) => failures.inc({ handler }),
    outcome: (outcome, source) => { outcomes[outcome][source].n++ },
    observe (s) { sources = s }
  }
}

/** Sets the gauge from a Redis read; on failure or timeout keeps the last value rather than hold up the scrape. */
async function readInto (gauge: Gauge, read: (() => Promise<number>) | undefined): Promise<void> {
  if (!read) return
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<undefined>((resolve) => { timer = setTimeout(() => resolve(undefined), SCRAPE_READ_TIMEOUT_MS) })
  try {
    const value = await Promise.race([read(), timeout])
    if (value !== undefined) gauge.set(value)
  } catch {
    // Redis is away: the readiness check and the subscriber gauge say so.
  } finally {
    clearTimeout(timer)
  }
}
