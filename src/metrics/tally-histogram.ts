import type { Histogram, Registry } from 'prom-client'

/**
 * A Prometheus histogram for the per-job path. prom-client's own histogram
 * builds a label object, validates it and hashes it into a string on every
 * observation, even through a child from `labels()`: at thousands of
 * observations a second that was a visible share of a worker's CPU and of
 * its garbage. Here each series is bound once (`series()`), and an
 * observation is a bucket search and three additions on numbers it owns.
 *
 * A scrape sees what it would see from prom-client's Histogram: `get()`
 * answers the same values (`<name>_bucket` per bound and `+Inf`, `_sum`,
 * `_count`, with the series' labels), in the same order: a labelled series
 * shows from its first observation, one without labels from the start.
 */
export interface HistogramSeries {
  observe: (value: number) => void
}

export interface TallyHistogramConfiguration<T extends string> {
  name: string
  help: string
  /** Upper bounds, ascending; `+Inf` is added. */
  buckets: readonly number[]
  labelNames?: readonly T[]
  registers: Registry[]
}

/** One value of get(), as prom-client's histograms give them. */
export interface HistogramValue {
  /** The series' labels, and `le` on the buckets. */
  labels: Record<string, string | number>
  value: number
  metricName: string
}

export interface HistogramData {
  name: string
  help: string
  type: 'histogram'
  aggregator: 'sum'
  values: HistogramValue[]
}

class Series implements HistogramSeries {
  /** Observations per bucket (not cumulative); those above the last bound are only in `count`. */
  readonly counts: Float64Array
  sum = 0
  count = 0
  /** In `shown`, the histogram's series in the order of their first observation (prom-client's order). */
  listed = false

  constructor (
    readonly labels: Readonly<Record<string, string>>, private readonly bounds: readonly number[], private readonly shown: Series[]
  ) {
    this.counts = new Float64Array(bounds.length)
  }

  observe (value: number): void {
    // prom-client refuses these too: one NaN would make the sum NaN for good.
    if (!Number.isFinite(value)) throw new TypeError(`Value is not a valid number: ${value}`)
    if (!this.listed) this.list()
    const { bounds } = this
    let i = 0
    while (i < bounds.length && value > (bounds[i] as number)) i++
    if (i < bounds.length) this.counts[i] = (this.counts[i] as number) + 1
    this.sum += value
    this.count++
  }

  list (): void {
    this.listed = true
    this.shown.push(this)
  }

  reset (): void {
    this.counts.fill(0)
    this.sum = 0
    this.count = 0
    this.listed = false
  }
}

export class TallyHistogram<T extends string = string> {
  readonly name: string
  readonly help: string
  readonly type = 'histogram' as const
  /** How prom-client's cluster registry combines workers' values. */
  readonly aggregator = 'sum' as const
  private readonly bounds: readonly number[]
  private readonly labelNames: readonly T[]
  /** By label values (joined). */
  private readonly bound = new Map<string, Series>()
  /** What a scrape shows: the series observed since the start or the last reset, and one without labels from the start. */
  private readonly shown: Series[] = []

  constructor (config: TallyHistogramConfiguration<T>) {
    this.name = config.name
    this.help = config.help
    this.bounds = [...config.buckets]
    this.labelNames = config.labelNames ?? []
    for (let i = 1; i < this.bounds.length; i++) {
      if ((this.bounds[i] as number) <= (this.bounds[i - 1] as number)) throw new Error(`${this.name}: buckets must ascend`)
    }
    if (this.labelNames.length === 0) {
      const series = new Series({}, this.bounds, this.shown)
      series.list()
      this.bound.set('', series)
    }
    // The registry reads a metric through name, help, type, aggregator, get() and reset(); this has them all.
    for (const registry of config.registers) registry.registerMetric(this as unknown as Histogram<T>)
  }

  /** The series of these label values (one per label name, in order); bind it once and keep it. */
  series (...values: string[]): HistogramSeries {
    if (values.length !== this.labelNames.length) {
      throw new Error(`${this.name}: expected ${this.labelNames.length} label values, got ${values.length}`)
    }
    const key = values.join('\u0000')
    let series = this.bound.get(key)
    if (!series) {
      const labels: Record<string, string> = {}
      this.labelNames.forEach((name, i) => { labels[name] = values[i] as string })
      series = new Series(labels, this.bounds, this.shown)
      this.bound.set(key, series)
    }
    return series
  }

  async get (): Promise<HistogramData> {
    const values: HistogramValue[] = []
    const bucket = `${this.name}_bucket`
    for (const s of this.shown) {
      let cumulative = 0
      this.bounds.forEach((le, i) => {
        cumulative += s.counts[i] as number
        values.push({ labels: { le, ...s.labels }, value: cumulative, metricName: bucket })
      })
      values.push(
        { labels: { le: '+Inf', ...s.labels }, value: s.count, metricName: bucket },
        { labels: { ...s.labels }, value: s.sum, metricName: `${this.name}_sum` },
        { labels: { ...s.labels }, value: s.count, metricName: `${this.name}_count` }
      )
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values }
  }

  /** As prom-client's reset: every series starts again from nothing, and shows again once observed. */
  reset (): void {
    for (const s of this.bound.values()) s.reset()
    this.shown.length = 0
  }
}
