import { mkdirSync, writeFileSync } from 'node:fs'
import { loadavg } from 'node:os'
import { join } from 'node:path'
import { killAll, root } from './children.js'
import { readOptions } from './options.js'
import { codeVersion, describeMachine } from './machine.js'
import { cpuTable, generatedSection, resultsTable, takeoverTable, writeDoc } from './report.js'
import { OWNERSHIP_DOC, ownershipSection } from './ownership-report.js'
import { runCell, type CellResult } from './run-cell.js'
import { runsOn, scenarios as allScenarios } from './scenarios.js'
import { costs, throughputSection } from './throughput-report.js'
import { bullmq } from './systems/bullmq.js'
import { keyspace } from './systems/keyspace.js'
import { ours } from './systems/ours.js'

/**
 * `npm run bench:expiry`: how late, how complete and how often each system
 * runs an expiry handler, on the same workloads, each against its own fresh
 * redis-server on 127.0.0.1. See docs/benchmarks.md.
 */
const opts = readOptions()
const systems = [ours, keyspace, bullmq].filter((s) => opts.systems.includes(s.name))
const scenarios = allScenarios(opts.scale, opts.pending).filter((s) => opts.scenarios.includes(s.key))

// Whatever happens, the redis-servers and workers this run started go with it.
process.on('exit', killAll)
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    console.error(`\n${signal}: stopping every process the benchmark started`)
    killAll()
    process.exit(130)
  })
}
const watchdog = setTimeout(() => {
  console.error(`the benchmark ran longer than ${opts.maxMs / 60_000} min; stopping`)
  killAll()
  process.exit(1)
}, opts.maxMs)
watchdog.unref()

const startedAt = new Date()
const runId = startedAt.toISOString().replace(/[:.]/g, '-')
const resultsDir = join(root, 'bench', 'results', runId)
mkdirSync(resultsDir, { recursive: true })

const { text: machine, redis } = describeMachine()
const code = codeVersion()
console.log(`checkout-expiry benchmark: scale ${opts.scale}, scenarios ${opts.scenarios.join('')}, systems ${opts.systems.join(', ')}`)
console.log(machine)
console.log(`code under test: ${code}`)

const results: CellResult[] = []
try {
  for (const scenario of scenarios) {
    console.log(`\n${scenario.key}. ${scenario.title}: ${scenario.description}`)
    for (const system of systems) {
      if (!runsOn(scenario, system.name)) {
        console.log(`  ${system.label.padEnd(20)} n/a (only ${scenario.systems?.join(', ') ?? ''})`)
        continue
      }
      const r = await runCell(system, scenario, opts, resultsDir)
      results.push(r)
      if (r.hz !== undefined && r.hz !== 10) r.notes.push(`redis-server ran with hz ${r.hz}`)
      const d = r.delivery
      console.log(d
        ? `  ${system.label.padEnd(20)} delivered ${d.delivered}/${d.expected}, lost ${d.lost}, duplicated ${d.duplicated}, ` +
          `lateness p50 ${d.lateness?.p50 ?? '–'} p99 ${d.lateness?.p99 ?? '–'} max ${d.lateness?.max ?? '–'} ms (${(r.timings.totalMs ?? 0) / 1000} s)` +
          (r.takeover ? `; ${r.takeover.takenOver} taken over, the last ${(r.takeover.lastStartAfterKillMs / 1000).toFixed(2)} s after the kill` : '') +
          (r.burst ? `; ${r.burst.perSecond}/s (peak 1 s ${r.burst.peak1s})` : '') +
          (r.rebalance ? rebalanceLine(r) : '') +
          (r.stall ? stallLine(r) : '') +
          (scenario.burst ? costLine(costs(r)) : '')
        : `  ${system.label.padEnd(20)} error: ${r.error ?? 'unknown'}`)
    }
  }
} finally {
  killAll()
}

const command = [...opts.overrides, 'npm run bench:expiry'].join(' ')
// The burst and the shard ownership scenarios have sections of their own.
const main = scenarios.filter((s) => !s.burst && !s.ownership)
const of = (keys: typeof scenarios) => results.filter((r) => keys.some((s) => s.key === r.scenario))
const mainResults = of(main)
const burstResults = of(scenarios.filter((s) => s.burst))
const ownership = scenarios.filter((s) => s.ownership)
const ownershipResults = of(ownership)
const info = (cells: CellResult[]) => {
  const loads = cells.map((r) => r.loadBefore)
  if (loads.length === 0) loads.push(loadavg()[0] ?? 0)
  const load = `1-min load average before each run: ${Math.min(...loads).toFixed(2)} to ${Math.max(...loads).toFixed(2)} (${loadavg()[0]?.toFixed(2)} at the end)`
  return { command, date: startedAt.toISOString().slice(0, 10), machine: `${machine}; ${load}`, code }
}
const section = main.length === 0
  ? undefined
  : generatedSection(info(mainResults), resultsTable(mainResults, main, systems), cpuTable(mainResults, main, systems), mainResults, takeoverTable(mainResults, systems))
const throughput = burstResults.length === 0 ? undefined : throughputSection(info(burstResults), burstResults, scenarios, systems)
const owned = ownership.length === 0 ? undefined : ownershipSection(info(ownershipResults), ownershipResults, scenarios, systems)
for (const text of [section, throughput, owned]) if (text !== undefined) console.log('\n' + text)

writeFileSync(join(resultsDir, 'summary.json'), JSON.stringify({
  command,
  startedAt: startedAt.toISOString(),
  machine,
  redis,
  code,
  options: opts,
  scenarios,
  systems: systems.map((s) => ({ name: s.name, label: s.label, disruption: s.disruption })),
  results
}, null, 2))
console.log(`\nraw results: bench/results/${runId}/`)
if (opts.cpuProf) console.log(`CPU profiles: bench/results/${runId}/prof/ (node --import tsx bench/profile-top.ts <file.cpuprofile>)`)
const doc = join(root, 'docs', 'benchmarks.md')
if (section !== undefined && opts.writeDocs) {
  writeDoc(doc, section)
  console.log('updated the results section of docs/benchmarks.md')
}
if (throughput !== undefined && opts.writeThroughputDocs) {
  writeDoc(doc, throughput, 'throughput')
  console.log('updated the throughput section of docs/benchmarks.md')
}
if (owned !== undefined && opts.writeOwnershipDocs) {
  writeDoc(doc, owned, OWNERSHIP_DOC.name, OWNERSHIP_DOC)
  console.log('updated the shard ownership section of docs/benchmarks.md')
}
if ((section !== undefined && !opts.writeDocs) || (throughput !== undefined && !opts.writeThroughputDocs)) {
  console.log('docs/benchmarks.md: a section not written (not a full run of its scenarios; BENCH_DOCS=1 writes it anyway)')
}
if (owned !== undefined && !opts.writeOwnershipDocs) console.log('docs/benchmarks.md: the shard ownership section (K, L) is written only with BENCH_DOCS=1')
clearTimeout(watchdog)

function costLine (c: ReturnType<typeof costs>): string {
  if (!c) return ''
  return `; worker CPU ${c.workerCpuPer10k.toFixed(2)} s/10k, Redis ${Math.round(c.redisUsPerExpiry)} µs, ` +
    `${c.commandsPerExpiry.toFixed(1)} commands (${c.scriptCallsPerExpiry.toFixed(2)} script calls) per expiry`
}
function rebalanceLine (r: CellResult): string {
  const b = r.rebalance
  if (!b) return ''
  const s = (ms: number | undefined) => (ms === undefined ? '–' : (ms / 1000).toFixed(2))
  return `; joiner subscribed ${s(r.fault.joinerSubscribedMs)} s and first ran a handler ${s(b.joinerFirstRunMs)} s after its start; ` +
    `runs leaver/stayer/joiner ${b.runs.leaver}/${b.runs.stayer}/${b.runs.joiner}; leaver exited ${s(r.fault.leaverExitMs)} s after SIGTERM, ` +
    `started ${b.leaverStartsAfterLeave} runs after it was sent` + (b.leaverStartsAfterLeave > 0 ? ` (the last ${s(b.leaverLastStartAfterLeaveMs)} s after)` : '')
}

function stallLine (r: CellResult): string {
  const st = r.stall
  if (!st) return ''
  const during = st.dueDuringStop
  return `; stopped ${r.fault.stoppedMs} ms, ${r.fault.reaped ? 'REAPED' : 'not reaped'}, its runs before/after ${st.runsBefore}/${st.runsAfter}` +
    (during ? `; holds due while stopped: p99 ${during.p99} max ${during.max} ms` : '')
}

process.exitCode = results.some((r) => r.error !== undefined) ? 1 : 0
