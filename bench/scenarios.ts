import type { SystemName } from './systems/types.js'

/**
 * The workloads. Every system runs each of them against a fresh redis-server.
 * Counts scale with BENCH_SCALE; times do not, so a quick run keeps the same
 * shape at a lower rate.
 */
export type ScenarioKey = 'A' | 'B' | 'C' | 'D' | 'E' | 'F' | BurstKey | OwnershipKey
/** The throughput (burst) scenarios: reported in their own section, not run by default. */
export type BurstKey = 'G' | 'H' | 'I' | 'J'
export const BURST_KEYS: BurstKey[] = ['G', 'H', 'I', 'J']
/**
 * The shard ownership scenarios (docs/delivery.md, "Shard ownership"):
 * checkout-expiry only, reported in their own section, not run by default.
 */
export type OwnershipKey = 'K' | 'L'
export const OWNERSHIP_KEYS: OwnershipKey[] = ['K', 'L']

export type Fault =
  | { kind: 'none' }
  /** Cut the workers off from Redis, starting atMs after the first deadline, for forMs. */
  | { kind: 'connections', atMs: number, forMs: number }
  /** No worker runs until afterMs past the last deadline. */
  | { kind: 'workers-late', afterMs: number }
  /** Stop Redis atMs after the first deadline, start it again forMs later (AOF on). */
  | { kind: 'redis-restart', atMs: number, forMs: number }
  /** SIGKILL one worker atMs after the first deadline; start a replacement at replaceAtMs. */
  | { kind: 'worker-kill', atMs: number, replaceAtMs: number }
  /** Start one more worker at joinAtMs after the first deadline; SIGTERM one of the first workers at leaveAtMs. */
  | { kind: 'rebalance', joinAtMs: number, leaveAtMs: number }
  /** SIGSTOP one worker atMs after the first deadline, SIGCONT it forMs later. */
  | { kind: 'worker-stall', atMs: number, forMs: number }

export interface Scenario {
  key: ScenarioKey
  title: string
  description: string
  workers: number
  /** Holds due in 30 minutes, created first; they must not fire during the run. */
  background: number
  /** Holds whose expiry is measured. */
  holds: number
  /** Their deadlines are spread evenly over this window. */
  windowMs: number
  appendonly: boolean
  fault: Fault
  /** How long each handler run takes (default: it returns at once). */
  handlerMs?: number
  /** Overrides BENCH_GRACE_MS: how long after the last deadline (or the fault) a handler may still run. */
  graceMs?: number
  /**
   * A throughput scenario: reported in the throughput section, and every
   * system's handler buffers its records (see bench/record.ts) so that
   * recording costs little at 20,000 calls/s.
   */
  burst?: boolean
  /** A shard ownership scenario: reported in the ownership section. */
  ownership?: boolean
  /** Only these systems run it; the others are reported as n/a (default: every system). */
  systems?: SystemName[]
}

export const isBurst = (key: ScenarioKey): key is BurstKey => (BURST_KEYS as string[]).includes(key)
export const isOwnership = (key: ScenarioKey): key is OwnershipKey => (OWNERSHIP_KEYS as string[]).includes(key)
/** Whether a system takes part in a scenario (K and L: checkout-expiry only). */
export const runsOn = (scenario: Scenario, system: SystemName): boolean => scenario.systems === undefined || scenario.systems.includes(system)

export const BACKGROUND_TTL_MS = 30 * 60_000

/** `pending`: scenario A's background holds (BENCH_PENDING), instead of 100,000 × scale. */
export function scenarios (scale: number, pending?: number): Scenario[] {
  const n = (count: number) => Math.max(10, Math.round(count * scale))
  const background = pending ?? n(100_000)
  return [
    {
      key: 'A',
      title: 'steady',
      description: `${background.toLocaleString('en')} background holds due in 30 min, then ${n(10_000).toLocaleString('en')} holds due evenly over 10 s (${Math.round(n(10_000) / 10).toLocaleString('en')}/s); one worker`,
      workers: 1,
      background,
      holds: n(10_000),
      windowMs: 10_000,
      appendonly: false,
      fault: { kind: 'none' }
    },
    {
      key: 'B',
      title: 'three workers',
      description: `${n(2_000).toLocaleString('en')} holds due evenly over 5 s; three workers`,
      workers: 3,
      background: 0,
      holds: n(2_000),
      windowMs: 5_000,
      appendonly: false,
      fault: { kind: 'none' }
    },
    {
      key: 'C',
      title: 'connection killed',
      description: `${n(3_000).toLocaleString('en')} holds due evenly over 6 s; one worker, cut off from Redis from 1.5 s to 4.5 s into the window`,
      workers: 1,
      background: 0,
      holds: n(3_000),
      windowMs: 6_000,
      appendonly: false,
      fault: { kind: 'connections', atMs: 1_500, forMs: 3_000 }
    },
    {
      key: 'D',
      title: 'workers down',
      description: `${n(2_000).toLocaleString('en')} holds due evenly over 5 s; no worker runs until 5 s after the last deadline`,
      workers: 1,
      background: 0,
      holds: n(2_000),
      windowMs: 5_000,
      appendonly: false,
      fault: { kind: 'workers-late', afterMs: 5_000 }
    },
    {
      key: 'E',
      title: 'Redis restart',
      description: `${n(3_000).toLocaleString('en')} holds due evenly over 6 s, appendonly yes; Redis stopped 1.5 s into the window and started again 3 s later`,
      workers: 1,
      background: 0,
      holds: n(3_000),
      windowMs: 6_000,
      appendonly: true,
      fault: { kind: 'redis-restart', atMs: 1_500, forMs: 3_000 }
    },
    {
      key: 'F',
      title: 'worker SIGKILLed',
      description: `${n(500).toLocaleString('en')} holds due evenly over 2 s, handlers that take 300 ms; two workers, one SIGKILLed 1 s into the window, a replacement started 2 s later`,
      workers: 2,
      background: 0,
      holds: n(500),
      windowMs: 2_000,
      appendonly: false,
      fault: { kind: 'worker-kill', atMs: 1_000, replaceAtMs: 3_000 },
      handlerMs: 300,
      // Job queues wait out a lock and a stalled-job check (30 s each in BullMQ).
      graceMs: 75_000
    },
    ...BURST_KEYS.map((key, i) => burst(key, i + 1, n(100_000), n(40_000))),
    {
      key: 'K',
      title: 'rebalance',
      description: `${n(3_000).toLocaleString('en')} holds due evenly over 6 s, handlers that take 100 ms; two workers, a third started 1.5 s into the window, ` +
        'one of the first two stopped with SIGTERM 3.5 s into the window',
      workers: 2,
      background: 0,
      holds: n(3_000),
      windowMs: 6_000,
      appendonly: false,
      fault: { kind: 'rebalance', joinAtMs: 1_500, leaveAtMs: 3_500 },
      handlerMs: 100,
      ownership: true,
      // Keyspace subscribers and BullMQ workers own no shards: nothing to rebalance.
      systems: ['ours']
    },
    {
      key: 'L',
      title: '2 s stall',
      description: `${n(2_500).toLocaleString('en')} holds due evenly over 5 s, handlers that take 100 ms; two workers, one stopped (SIGSTOP) 1.5 s into the window ` +
        'and continued (SIGCONT) 2 s later',
      workers: 2,
      background: 0,
      holds: n(2_500),
      windowMs: 5_000,
      appendonly: false,
      fault: { kind: 'worker-stall', atMs: 1_500, forMs: 2_000 },
      handlerMs: 100,
      ownership: true,
      systems: ['ours']
    }
  ]
}

/** 40,000 holds due over 2 s (20,000/s) on top of 100,000 background holds, with 1 to 4 workers. */
function burst (key: BurstKey, workers: number, background: number, holds: number): Scenario {
  const plural = workers === 1 ? 'one worker' : `${workers} workers`
  return {
    key,
    title: `burst, ${plural}`,
    description: `${background.toLocaleString('en')} background holds due in 30 min, then ${holds.toLocaleString('en')} holds due evenly over 2 s ` +
      `(${Math.round(holds / 2).toLocaleString('en')}/s); ${plural}`,
    workers,
    background,
    holds,
    windowMs: 2_000,
    appendonly: false,
    fault: { kind: 'none' },
    burst: true
  }
}
