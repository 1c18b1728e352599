import { noteLines, runHeader, type RunInfo } from './report.js'
import type { CellResult } from './run-cell.js'
import type { Scenario } from './scenarios.js'
import type { BenchSystem } from './systems/types.js'

/**
 * The throughput section of docs/benchmarks.md (scenarios G-J): how fast
 * each system gets through a burst of due holds, and what each expiry costs
 * in worker CPU, Redis CPU and Redis commands.
 */
export const THROUGHPUT_TARGETS = { perSecond: 20_000, p99: 100, workerCpuPer10k: 1, vsBullmq: 0.5 }

/** Commands of scripts: INFO COMMANDSTATS counts the commands they run as well, under their own names. */
const SCRIPT_COMMANDS = new Set(['eval', 'evalsha', 'eval_ro', 'evalsha_ro', 'fcall', 'fcall_ro'])
/** The benchmark's own sampling, not the system's. */
const OWN_COMMANDS = new Set(['info'])

export interface Costs {
  /** Worker CPU seconds (all workers) per 10,000 delivered expiries. */
  workerCpuPer10k: number
  /** redis-server CPU µs per delivered expiry. */
  redisUsPerExpiry: number
  /** Every command Redis counted (those run inside scripts included), per delivered expiry. */
  commandsPerExpiry: number
  /** Script calls (EVALSHA, EVAL, FCALL and their _RO forms) per delivered expiry. */
  scriptCallsPerExpiry: number
}

export function costs (r: CellResult): Costs | undefined {
  const delivered = r.delivery?.delivered ?? 0
  if (!r.cpu || delivered === 0) return undefined
  let commands = 0
  let scripts = 0
  for (const [name, c] of Object.entries(r.cpu.commands)) {
    if (OWN_COMMANDS.has(name)) continue
    commands += c.calls
    if (SCRIPT_COMMANDS.has(name)) scripts += c.calls
  }
  return {
    workerCpuPer10k: r.cpu.workersMs / 1000 / (delivered / 10_000),
    redisUsPerExpiry: r.cpu.redisMs * 1000 / delivered,
    commandsPerExpiry: commands / delivered,
    scriptCallsPerExpiry: scripts / delivered
  }
}

const int = (n: number | undefined) => (n === undefined || Number.isNaN(n) ? '–' : Math.round(n).toLocaleString('en'))
const dec = (n: number | undefined, digits: number) => (n === undefined || !Number.isFinite(n) ? '–' : n.toFixed(digits))

/** Throughput the target asks for: the last hold's run starts within the p99 bound of its deadline. */
export function requiredPerSecond (s: Scenario): number {
  return Math.floor(s.holds / ((s.windowMs + THROUGHPUT_TARGETS.p99) / 1000))
}

export function throughputTable (results: CellResult[], scenarios: Scenario[], systems: BenchSystem[]): string {
  const rows = [
    '| Scenario | System | Workers | Delivered / expected | Lost | Duplicated | Throughput (/s) | Peak 1 s | Lateness p50 (ms) | p99 (ms) | max (ms) | ' +
      'Worker CPU (s / 10k) | × BullMQ | Redis CPU (µs / expiry) | Redis commands / expiry | Script calls / expiry |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |'
  ]
  for (const s of scenarios) {
    const bullmq = results.find((x) => x.scenario === s.key && x.system === 'bullmq')
    const bullmqCpu = bullmq ? costs(bullmq)?.workerCpuPer10k : undefined
    for (const sys of systems) {
      const r = results.find((x) => x.scenario === s.key && x.system === sys.name)
      if (!r) continue
      const d = r.delivery
      if (!d) {
        rows.push(`| ${s.key}. ${s.title} | ${sys.label} | ${s.workers} | error: ${(r.error ?? 'no result').replace(/\|/g, '/').slice(0, 80)} |${' |'.repeat(12)}`)
        continue
      }
      const c = costs(r)
      const ratio = c && bullmqCpu ? c.workerCpuPer10k / bullmqCpu : undefined
      rows.push(`| ${s.key}. ${s.title} | ${sys.label} | ${s.workers} | ${int(d.delivered)} / ${int(d.expected)} | ${int(d.lost)} | ${int(d.duplicated)} | ` +
        `${int(r.burst?.perSecond)} | ${int(r.burst?.peak1s)} | ${int(d.lateness?.p50)} | ${int(d.lateness?.p99)} | ${int(d.lateness?.max)} | ` +
        `${dec(c?.workerCpuPer10k, 2)} | ${dec(ratio, 2)} | ${int(c?.redisUsPerExpiry)} | ${dec(c?.commandsPerExpiry, 1)} | ${dec(c?.scriptCallsPerExpiry, 2)} |`)
    }
  }
  return rows.join('\n')
}

/** checkout-expiry with one worker (scenario G) against the throughput targets. */
export function throughputTargetLines (results: CellResult[], scenarios: Scenario[]): string[] {
  const g = scenarios.find((s) => s.key === 'G')
  const r = results.find((x) => x.scenario === 'G' && x.system === 'ours')
  const d = r?.delivery
  if (!g || !r || !d?.lateness) return ['Scenario G was not run for checkout-expiry, or it failed: no target check.']
  const c = costs(r)
  const bullmq = results.find((x) => x.scenario === 'G' && x.system === 'bullmq')
  const bullmqCpu = bullmq ? costs(bullmq)?.workerCpuPer10k : undefined
  const check = (ok: boolean | undefined) => (ok === undefined ? 'not measured' : ok ? 'met' : '**missed**')
  const T = THROUGHPUT_TARGETS
  const need = requiredPerSecond(g)
  const offered = Math.round(g.holds / (g.windowMs / 1000))
  const ratio = c && bullmqCpu ? c.workerCpuPer10k / bullmqCpu : undefined
  return [
    `- ${offered.toLocaleString('en')} expiries/s with one worker${offered === T.perSecond ? '' : ` (scaled down from ${T.perSecond.toLocaleString('en')}/s)`}, i.e. throughput ≥ ${need.toLocaleString('en')}/s (the last run starts within ${T.p99} ms of the last deadline) and nothing lost: ` +
      `${check(r.burst !== undefined && r.burst.perSecond >= need && d.lost === 0)} (${int(r.burst?.perSecond)}/s, ${int(d.lost)} lost)`,
    `- lateness p99 ≤ ${T.p99} ms: ${check(d.lateness.p99 <= T.p99)} (${int(d.lateness.p99)} ms)`,
    `- worker CPU ≤ ${T.workerCpuPer10k} s per 10,000 expiries: ${check(c ? c.workerCpuPer10k <= T.workerCpuPer10k : undefined)} (${dec(c?.workerCpuPer10k, 2)} s)`,
    `- worker CPU ≤ ${T.vsBullmq}× BullMQ's: ${check(ratio === undefined ? undefined : ratio <= T.vsBullmq)} (${dec(ratio, 2)}×)`,
    `- zero duplicated: ${check(d.duplicated === 0)} (${int(d.duplicated)})`
  ]
}

export function throughputSection (info: RunInfo, results: CellResult[], scenarios: Scenario[], systems: BenchSystem[]): string {
  const burst = scenarios.filter((s) => s.burst)
  const cells = results.filter((r) => burst.some((s) => s.key === r.scenario))
  const notes = noteLines(cells)
  return [
    ...runHeader(info),
    '',
    throughputTable(cells, burst, systems),
    '',
    'Targets for checkout-expiry (scenario G, one worker):',
    '',
    ...throughputTargetLines(cells, burst),
    ...(notes.length > 0 ? ['', 'Notes from the run:', '', ...notes] : [])
  ].join('\n')
}
