import type { CallRecord } from './record.js'

/**
 * Turns the handler calls of one run into the numbers the report shows.
 * Lateness is taken from the first call of each expected id: handler start
 * minus the deadline the system reports (the benchmark's own record of the
 * deadline when the system cannot report one).
 */
export interface Lateness {
  p50: number
  p99: number
  max: number
  min: number
  mean: number
}

export interface Delivery {
  expected: number
  /** Distinct expected ids whose handler ran. */
  delivered: number
  /** Expected ids whose handler never ran before the collection ended. */
  lost: number
  /** Ids whose handler ran more than once. */
  duplicated: number
  /** Handler calls beyond the first of each id. */
  extraCalls: number
  /** Calls for ids that were not expected (background holds, for instance). */
  unexpected: number
  lateness: Lateness | undefined
  histogram: Record<string, number>
  /** First calls per second of the window (second 0 holds the first deadline). */
  perSecond: Array<{ second: number, calls: number, p50: number, max: number }>
  /** A few lost ids, for looking into them. */
  lostSample: string[]
}

/** Nearest-rank percentile of a sorted array. */
export function percentile (sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil(p * sorted.length)))
  return sorted[rank - 1] as number
}

const BUCKETS: Array<[string, number]> = [
  ['<0', 0], ['0-10', 10], ['10-25', 25], ['25-50', 50], ['50-100', 100],
  ['100-250', 250], ['250-1000', 1000], ['1000-5000', 5000], ['>=5000', Infinity]
]

function histogram (values: number[]): Record<string, number> {
  const out: Record<string, number> = Object.fromEntries(BUCKETS.map(([name]) => [name, 0]))
  for (const v of values) {
    const bucket = BUCKETS.find(([, upper]) => v < upper) ?? BUCKETS[BUCKETS.length - 1]
    if (bucket) out[bucket[0]] = (out[bucket[0]] ?? 0) + 1
  }
  return out
}

function lateness (values: number[]): Lateness | undefined {
  if (values.length === 0) return undefined
  const sorted = [...values].sort((a, b) => a - b)
  return {
    p50: percentile(sorted, 0.5),
    p99: percentile(sorted, 0.99),
    max: sorted[sorted.length - 1] as number,
    min: sorted[0] as number,
    mean: Math.round(sorted.reduce((s, v) => s + v, 0) / sorted.length * 10) / 10
  }
}

export function summarize (records: CallRecord[], deadlines: Map<string, number>, windowStart: number): Delivery {
  const calls = new Map<string, CallRecord[]>()
  let unexpected = 0
  for (const r of records) {
    if (!deadlines.has(r.id)) {
      unexpected++
      continue
    }
    const list = calls.get(r.id)
    if (list) list.push(r)
    else calls.set(r.id, [r])
  }
  const late: number[] = []
  const seconds = new Map<number, number[]>()
  let duplicated = 0
  let extraCalls = 0
  for (const [id, list] of calls) {
    if (list.length > 1) {
      duplicated++
      extraCalls += list.length - 1
    }
    const first = list.reduce((a, b) => (b.now < a.now ? b : a))
    const deadline = first.deadline ?? (deadlines.get(id) as number)
    const ms = first.now - deadline
    late.push(ms)
    const second = Math.floor((deadline - windowStart) / 1000)
    const bucket = seconds.get(second)
    if (bucket) bucket.push(ms)
    else seconds.set(second, [ms])
  }
  const lost = [...deadlines.keys()].filter((id) => !calls.has(id))
  return {
    expected: deadlines.size,
    delivered: calls.size,
    lost: lost.length,
    duplicated,
    extraCalls,
    unexpected,
    lateness: lateness(late),
    histogram: histogram(late),
    perSecond: [...seconds.entries()].sort((a, b) => a[0] - b[0]).map(([second, values]) => {
      const sorted = values.sort((a, b) => a - b)
      return { second, calls: sorted.length, p50: percentile(sorted, 0.5), max: sorted[sorted.length - 1] as number }
    }),
    lostSample: lost.slice(0, 10)
  }
}

export interface Takeover {
  /** Holds due before the kill whose (completed) run started after it: the killed worker's unfinished work. */
  takenOver: number
  /** From the kill to the start of the last of those runs, ms; 0 when there were none. */
  lastStartAfterKillMs: number
}

/** Scenario F: how long the killed worker's unfinished work waited for another worker. */
export function takeoverAfterKill (records: CallRecord[], deadlines: Map<string, number>, killedAt: number): Takeover {
  const rerun = records.filter((r) => (deadlines.get(r.id) ?? Infinity) <= killedAt && r.now >= killedAt)
  return {
    takenOver: new Set(rerun.map((r) => r.id)).size,
    lastStartAfterKillMs: rerun.length > 0 ? Math.max(...rerun.map((r) => r.now)) - killedAt : 0
  }
}

export interface BurstRate {
  /** From the first deadline to the start of the last first run, ms. */
  spanMs: number
  /** Delivered ids per second over spanMs. */
  perSecond: number
  /** Most first runs that started within any one second. */
  peak1s: number
}

/** Throughput scenarios: how fast the first runs of the expected ids came. */
export function burstRate (records: CallRecord[], deadlines: Map<string, number>): BurstRate | undefined {
  const first = new Map<string, number>()
  for (const r of records) {
    if (!deadlines.has(r.id)) continue
    const seen = first.get(r.id)
    if (seen === undefined || r.now < seen) first.set(r.id, r.now)
  }
  if (first.size === 0) return undefined
  const starts = [...first.values()].sort((a, b) => a - b)
  let firstDeadline = Infinity
  for (const d of deadlines.values()) firstDeadline = Math.min(firstDeadline, d)
  const spanMs = Math.max(1, (starts[starts.length - 1] as number) - firstDeadline)
  let peak1s = 0
  for (let lo = 0, hi = 0; hi < starts.length; hi++) {
    while ((starts[hi] as number) - (starts[lo] as number) >= 1000) lo++
    peak1s = Math.max(peak1s, hi - lo + 1)
  }
  return { spanMs, perSecond: Math.round(first.size / (spanMs / 1000)), peak1s }
}
