import { LATENESS_BOUNDS_MS, type MinuteActivity } from '../store/activity.js'
import type { WorkerState } from '../store/activity.js'

/**
 * The summary figures and alert states the dashboard shows, computed from
 * what the workers recorded (src/store/activity.ts). The alerts follow the
 * Prometheus rules of docs/operations.md (same names, thresholds and `for:`
 * delays), on the minute buckets instead of scraped series. A condition that
 * holds is `pending` until it has held for its rule's `for:` (tracked in
 * Redis by src/store/activity.ts trackAlertConditions), then `firing`.
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

export interface AlertCondition {
  name: string
  /** The rule's expression holds now. */
  holds: boolean
  summary: string
}

/** The `for:` of each rule in docs/operations.md (ms); KeyspaceEventsOff has no rule there and fires at once. */
export const ALERT_FOR_MS: Readonly<Record<string, number>> = {
  CheckoutExpiryDeadLetters: 60_000,
  CheckoutExpiryLate: 600_000,
  CheckoutExpirySweeperBehind: 900_000,
  CheckoutExpirySubscriberDisconnected: 120_000,
  CheckoutExpiryWorkerNotReady: 120_000,
  CheckoutExpiryNoWorkerReady: 60_000,
  KeyspaceEventsOff: 0
}

export interface AlertState {
  name: string
  /** inactive: the condition does not hold; pending: it holds, for less than forMs; firing: for forMs or more. */
  state: 'inactive' | 'pending' | 'firing'
  firing: boolean
  forMs: number
  /** Since when the condition holds (server ms), null when it does not. */
  since: number | null
  summary: string
}

/** Applies the `for:` delays: `since` tells, per condition holding now, since when it has held. */
export function withForDelays (conditions: readonly AlertCondition[], since: ReadonlyMap<string, number>, now: number): AlertState[] {
  return conditions.map(({ name, holds, summary }) => {
    const forMs = ALERT_FOR_MS[name] ?? 0
    const from = holds ? since.get(name) ?? now : undefined
    const state = from === undefined ? 'inactive' : now - from >= forMs ? 'firing' : 'pending'
    return { name, state, firing: state === 'firing', forMs, since: from ?? null, summary }
  })
}

/** The rules' expressions, evaluated now (no `for:`). */
export function alertConditions (input: AlertInput): AlertCondition[] {
  const last5 = input.minutes.slice(-5)
  const p99 = latenessQuantile(sumLateness(last5), 0.99)
  const byEvent = input.minutes.reduce((a, m) => a + m.runs.event, 0)
  const firstRuns = input.minutes.reduce((a, m) => a + m.runs.event + m.runs.sweep, 0)
  const eventShare = firstRuns === 0 ? 0 : byEvent / firstRuns
  const alive = input.workers.filter((w) => w.alive)
  const notReady = input.workers.filter((w) => !w.alive || !w.ready)
  const unsubscribed = alive.filter((w) => !w.subscriber)
  return [
    { name: 'CheckoutExpiryDeadLetters', holds: input.deadLetters > 0, summary: `${input.deadLetters} order(s) in the dead-letter set` },
    { name: 'CheckoutExpiryLate', holds: p99 !== undefined && p99 > LATENESS_ALERT_MS, summary: p99 === undefined ? 'no expiry in the last 5 min' : `p99 lateness ${p99} ms over 5 min (alert above ${LATENESS_ALERT_MS} ms)` },
    {
      name: 'CheckoutExpirySweeperBehind',
      // The rule's rate floor: more than 0.1 expiries a second over 15 min.
      holds: eventShare > 0.1 && firstRuns / (15 * 60) > 0.1,
      summary: `${(eventShare * 100).toFixed(1)} % of expiries found by keyspace event over 15 min`
    },
    { name: 'CheckoutExpirySubscriberDisconnected', holds: unsubscribed.length > 0, summary: `${unsubscribed.length} live worker(s) not subscribed to expired events` },
    { name: 'CheckoutExpiryWorkerNotReady', holds: notReady.length > 0, summary: `${notReady.length} worker(s) not ready or not reporting` },
    { name: 'CheckoutExpiryNoWorkerReady', holds: !alive.some((w) => w.ready), summary: `${alive.filter((w) => w.ready).length} worker(s) ready` },
    {
      name: 'KeyspaceEventsOff',
      holds: input.keyspaceEvents === false,
      summary: input.keyspaceEvents === undefined ? 'cannot read notify-keyspace-events (CONFIG blocked)' : input.keyspaceEvents ? 'expired events are on' : 'expired events are off: the sweeper alone finds expiries'
    }
  ]
}

/** notify-keyspace-events publishes expired keyevents: `E` with `x` (or `A`, which includes it). */
export const expiredEventsOn = (flags: string): boolean => flags.includes('E') && (flags.includes('x') || flags.includes('A'))
