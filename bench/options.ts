import type { ScenarioKey } from './scenarios.js'
import type { SystemName } from './systems/types.js'

/**
 * Benchmark settings, from the environment:
 *   BENCH_SCALE       multiplies every hold count (default 1; 0.1 for a quick run)
 *   BENCH_SCENARIOS   comma list of A-F (default all)
 *   BENCH_SYSTEMS     comma list of ours, keyspace, bullmq (default all)
 *   BENCH_GRACE_MS    how long after the last deadline a handler may still run (default 15000)
 *   BENCH_DOCS        1: update docs/benchmarks.md, 0: do not; by default only a full run does
 *   BENCH_MAX_MINUTES hard cap on the whole run (default 20)
 *   BENCH_LOG_LEVEL   log level of checkout-expiry's workers (default warn); their output is kept in bench/results/
 */
export interface BenchOptions {
  scale: number
  scenarios: ScenarioKey[]
  systems: SystemName[]
  graceMs: number
  /** After every expected id has run, keep collecting this long to catch duplicates. */
  settleMs: number
  writeDocs: boolean
  maxMs: number
  /** The environment overrides given, for the report's command line. */
  overrides: string[]
}

const ALL_SCENARIOS: ScenarioKey[] = ['A', 'B', 'C', 'D', 'E', 'F']
const ALL_SYSTEMS: SystemName[] = ['ours', 'keyspace', 'bullmq']

function list<T extends string> (raw: string | undefined, allowed: T[], name: string): T[] {
  if (raw === undefined || raw.trim() === '') return allowed
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

export function readOptions (env: NodeJS.ProcessEnv = process.env): BenchOptions {
  const scale = number(env.BENCH_SCALE, 1, 'BENCH_SCALE', 0.001, 10)
  const scenarios = list(env.BENCH_SCENARIOS, ALL_SCENARIOS, 'BENCH_SCENARIOS')
  const systems = list(env.BENCH_SYSTEMS, ALL_SYSTEMS, 'BENCH_SYSTEMS')
  const full = scale === 1 && scenarios.length === ALL_SCENARIOS.length && systems.length === ALL_SYSTEMS.length
  const overrides = ['BENCH_SCALE', 'BENCH_SCENARIOS', 'BENCH_SYSTEMS', 'BENCH_GRACE_MS', 'BENCH_LOG_LEVEL']
    .filter((name) => env[name] !== undefined && env[name] !== '')
    .map((name) => `${name}=${env[name]}`)
  return {
    scale,
    scenarios,
    systems,
    graceMs: number(env.BENCH_GRACE_MS, 15_000, 'BENCH_GRACE_MS', 1000, 120_000),
    settleMs: 2000,
    writeDocs: env.BENCH_DOCS === '1' || (env.BENCH_DOCS !== '0' && full),
    maxMs: number(env.BENCH_MAX_MINUTES, 20, 'BENCH_MAX_MINUTES', 1, 120) * 60_000,
    overrides
  }
}
