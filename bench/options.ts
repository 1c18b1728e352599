import { BURST_KEYS, isBurst, isOwnership, OWNERSHIP_KEYS, type ScenarioKey } from './scenarios.js'
import type { SystemName } from './systems/types.js'

/**
 * Benchmark settings, from the environment:
 *   BENCH_SCALE       multiplies every hold count (default 1; 0.1 for a quick run)
 *   BENCH_PENDING     scenario A's background holds, pending while the measured ones come due
 *                     (default 100,000 × BENCH_SCALE; 1M accepted); not a full run when set
 *   BENCH_SCENARIOS   comma list of A-L (default A-F; the burst scenarios G-J and the shard ownership
 *                     scenarios K, L run only when named)
 *   BENCH_SYSTEMS     comma list of ours, keyspace, bullmq (default all)
 *   BENCH_GRACE_MS    how long after the last deadline a handler may still run (default 15000)
 *   BENCH_DOCS        1: update docs/benchmarks.md, 0: do not; by default only a full run does
 *                     (A-F for the results section, G-J for the throughput section; scale 1, every system);
 *                     the ownership section (K, L) only with BENCH_DOCS=1
 *   BENCH_MAX_MINUTES hard cap on the whole run (default 20)
 *   BENCH_LOG_LEVEL   log level of checkout-expiry's workers (default warn); their output is kept in bench/results/
 *   BENCH_CPU_PROF    1: checkout-expiry's workers run with --cpu-prof into bench/results/<run>/prof/
 */
export interface BenchOptions {
  scale: number
  /** Scenario A's background (pending) holds, when BENCH_PENDING sets them. */
  pending?: number
  scenarios: ScenarioKey[]
  systems: SystemName[]
  graceMs: number
  /** After every expected id has run, keep collecting this long to catch duplicates. */
  settleMs: number
  /** Write the results section (scenarios A-F) of docs/benchmarks.md. */
  writeDocs: boolean
  /** Write the throughput section (scenarios G-J). */
  writeThroughputDocs: boolean
  /** Write the shard ownership section (scenarios K, L): only when BENCH_DOCS=1. */
  writeOwnershipDocs: boolean
  cpuProf: boolean
  maxMs: number
  /** The environment overrides given, for the report's command line. */
  overrides: string[]
}

const MAIN_SCENARIOS: ScenarioKey[] = ['A', 'B', 'C', 'D', 'E', 'F']
const ALL_SCENARIOS: ScenarioKey[] = [...MAIN_SCENARIOS, ...BURST_KEYS, ...OWNERSHIP_KEYS]
const ALL_SYSTEMS: SystemName[] = ['ours', 'keyspace', 'bullmq']

function list<T extends string> (raw: string | undefined, allowed: T[], name: string, dflt = allowed): T[] {
  if (raw === undefined || raw.trim() === '') return dflt
  const picked = raw.split(',').map((s) => s.trim()).filter(Boolean)
  for (const p of picked) {
    if (!allowed.includes(p as T)) throw new Error(`${name}: unknown "${p}"; expected some of ${allowed.join(',')}`)
  }
  return allowed.filter((a) => picked.includes(a))
}

function number (raw: string | undefined, dflt: number, name: string, min: number, max: number): number {
  if (raw === undefined || raw.trim() === '') return dflt
  const n = Number(raw)
  if (!Number.isFinite(n) || n < min || n > max) throw new Error(`${name}=${raw}: expected a number from ${min} to ${max}`)
  return n
}

/** A hold count: 1000, 100k, 1M or 1e6. */
function count (raw: string, name: string): number {
  const m = /^(\d+(?:\.\d+)?(?:e\d+)?)([kKmM]?)$/.exec(raw.trim())
  const n = m ? Number(m[1]) * ({ k: 1e3, m: 1e6 }[(m[2] ?? '').toLowerCase()] ?? 1) : Number.NaN
  if (!Number.isInteger(n) || n < 0 || n > 5_000_000) throw new Error(`${name}=${raw}: expected a count from 0 to 5,000,000`)
  return n
}

export function readOptions (env: NodeJS.ProcessEnv = process.env): BenchOptions {
  const scale = number(env.BENCH_SCALE, 1, 'BENCH_SCALE', 0.001, 10)
  const scenarios = list(env.BENCH_SCENARIOS, ALL_SCENARIOS, 'BENCH_SCENARIOS', MAIN_SCENARIOS)
  const systems = list(env.BENCH_SYSTEMS, ALL_SYSTEMS, 'BENCH_SYSTEMS')
  const pending = env.BENCH_PENDING === undefined || env.BENCH_PENDING.trim() === '' ? undefined : count(env.BENCH_PENDING, 'BENCH_PENDING')
  const everything = scale === 1 && systems.length === ALL_SYSTEMS.length && pending === undefined
  const main = scenarios.filter((s) => !isBurst(s) && !isOwnership(s))
  const burst = scenarios.filter(isBurst)
  const full = everything && main.length === MAIN_SCENARIOS.length
  const fullBurst = everything && burst.length === BURST_KEYS.length
  const overrides = ['BENCH_SCALE', 'BENCH_PENDING', 'BENCH_SCENARIOS', 'BENCH_SYSTEMS', 'BENCH_GRACE_MS', 'BENCH_LOG_LEVEL', 'BENCH_CPU_PROF']
    .filter((name) => env[name] !== undefined && env[name] !== '')
    .map((name) => `${name}=${env[name]}`)
  return {
    scale,
    ...pending === undefined ? {} : { pending },
    scenarios,
    systems,
    graceMs: number(env.BENCH_GRACE_MS, 15_000, 'BENCH_GRACE_MS', 1000, 120_000),
    settleMs: 2000,
    writeDocs: main.length > 0 && (env.BENCH_DOCS === '1' || (env.BENCH_DOCS !== '0' && full)),
    writeThroughputDocs: burst.length > 0 && (env.BENCH_DOCS === '1' || (env.BENCH_DOCS !== '0' && fullBurst)),
    writeOwnershipDocs: scenarios.some(isOwnership) && env.BENCH_DOCS === '1',
    cpuProf: env.BENCH_CPU_PROF === '1',
    maxMs: number(env.BENCH_MAX_MINUTES, 20, 'BENCH_MAX_MINUTES', 1, 120) * 60_000,
    overrides
  }
}
