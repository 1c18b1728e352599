import { LATENESS_BOUNDS_MS, type MinuteActivity } from '../store/activity.js'
import type { WorkerState } from '../store/activity.js'

/**
 * The summary figures and alert states the dashboard shows, computed from
 * what the workers recorded (src/store/activity.ts). The alerts follow the
 * Prometheus rules of docs/operations.md (same names, same thresholds), on
 * the minute buckets instead of scraped series, and without their `for:`
 * delays: the page shows the state now.
 */
export const LATENESS_ALERT_MS = 1000

/** The lateness at quantile q (ms): the upper bound of the bucket it falls in; undefined with no sample. */
export function latenessQuantile (counts: readonly number[], q: number): number | undefined {
  const total = counts.reduce((a, b) => a + b, 0)
  if (total === 0) return undefined
  let seen = 0
  for (const [i, n] of counts.entries()) {
    seen += n
    if (seen >= q * total) return LATENESS_BOUNDS_MS[i] ?? LATENESS_BOUNDS_MS[LATENESS_BOUNDS_MS.length - 1] as number
  }
  return undefined
}

export function sumLateness (minutes: readonly MinuteActivity[]): number[] {
  const sum = Array.from({ length: LATENESS_BOUNDS_MS.length + 1 }, () => 0)
  for (const m of minutes) m.lateness.forEach((n, i) => { sum[i] = (sum[i] ?? 0) + n })
  return sum
}

export interface WorkerHealth extends WorkerState {
  /** Server time since the worker last reported (ms). */
  ageMs: number
  alive: boolean
}

export interface MasterHealth {
  master: string
  /** Live workers whose expired-events subscription is up on this master. */
  workers: number
  subscribed: boolean
}

/**
 * Per master, whether at least one live worker hears its expired events.
 * `masters` are the masters the API knows (`host:port`, from the cluster's
 * slot map); on a single Redis (`single`) there is one master and a worker's
 * one subscription counts for it whatever address it connects by.
 */
export function masterHealth (masters: readonly string[], workers: readonly WorkerHealth[], single: boolean): MasterHealth[] {
  const live = workers.filter((w) => w.alive)
  return masters.map((master) => {
    const n = live.filter((w) => single ? (w.masters?.length ?? 0) > 0 : w.masters?.includes(master) === true).length
    return { master, workers: n, subscribed: n > 0 }
  })
}

/** A worker whose report is older than this is taken for gone: its report comes every second, its claims last EXPIRY_LEASE_MS. */
export const workerStaleMs = (leaseMs: number): number => Math.max(leaseMs, 3000)

export interface AlertInput {
  deadLetters: number
  /** The last 15 minute buckets, oldest first. */
  minutes: readonly MinuteActivity[]
  workers: readonly WorkerHealth[]
  keyspaceEvents: boolean | undefined
}

export interface AlertState {
  name: string
  firing: boolean
  summary: string
}

export function alertStates (input: AlertInput): AlertState[] {
  const last5 = input.minutes.slice(-5)
  const p99 = latenessQuantile(sumLateness(last5), 0.99)
  const byEvent = input.minutes.reduce((a, m) => a + m.runs.event, 0)
  const firstRuns = input.minutes.reduce((a, m) => a + m.runs.event + m.runs.sweep, 0)
  const eventShare = firstRuns === 0 ? 0 : byEvent / firstRuns
  const alive = input.workers.filter((w) => w.alive)
  const notReady = input.workers.filter((w) => !w.alive || !w.ready)
  const unsubscribed = alive.filter((w) => !w.subscriber)
  return [
    { name: 'CheckoutExpiryDeadLetters', firing: input.deadLetters > 0, summary: `${input.deadLetters} order(s) in the dead-letter set` },
    { name: 'CheckoutExpiryLate', firing: p99 !== undefined && p99 > LATENESS_ALERT_MS, summary: p99 === undefined ? 'no expiry in the last 5 min' : `p99 lateness ${p99} ms over 5 min (alert above ${LATENESS_ALERT_MS} ms)` },
    {
      name: 'CheckoutExpirySweeperBehind',
      // The rule's rate floor: more than 0.1 expiries a second over 15 min.
      firing: eventShare > 0.1 && firstRuns / (15 * 60) > 0.1,
      summary: `${(eventShare * 100).toFixed(1)} % of expiries found by keyspace event over 15 min`
    },
    { name: 'CheckoutExpirySubscriberDisconnected', firing: unsubscribed.length > 0, summary: `${unsubscribed.length} live worker(s) not subscribed to expired events` },
    { name: 'CheckoutExpiryWorkerNotReady', firing: notReady.length > 0, summary: `${notReady.length} worker(s) not ready or not reporting` },
    { name: 'CheckoutExpiryNoWorkerReady', firing: !alive.some((w) => w.ready), summary: `${alive.filter((w) => w.ready).length} worker(s) ready` },
    {
      name: 'KeyspaceEventsOff',
      firing: input.keyspaceEvents === false,
      summary: input.keyspaceEvents === undefined ? 'cannot read notify-keyspace-events (CONFIG blocked)' : input.keyspaceEvents ? 'expired events are on' : 'expired events are off: the sweeper alone finds expiries'
    }
  ]
}

/** notify-keyspace-events publishes expired keyevents: `E` with `x` (or `A`, which includes it). */
export const expiredEventsOn = (flags: string): boolean => flags.includes('E') && (flags.includes('x') || flags.includes('A'))
