import { mkdirSync, writeFileSync } from 'node:fs'
import { loadavg } from 'node:os'
import { join } from 'node:path'
import { killAll, root } from './children.js'
import { runFailover, type FailoverKind, type FailoverResult } from './failover-run.js'
import { codeVersion, describeMachine } from './machine.js'
import { writeDoc } from './report.js'

/**
 * `npm run bench:failover`: how long a failover interrupts the API and the
 * expiries: on a Redis Cluster for a manual `CLUSTER FAILOVER` and for a
 * master killed with SIGKILL (the cluster promotes its replica), and with
 * Sentinel for a primary killed with SIGKILL. See docs/benchmarks.md.
 *   BENCH_FAILOVER_RUNS     runs of each kind (default 3)
 *   BENCH_FAILOVER_KINDS    comma list of manual, kill, sentinel (default all)
 *   BENCH_NODE_TIMEOUT_MS   cluster-node-timeout of every node (default 2000)
 *   BENCH_DOCS              1: update docs/benchmarks.md, 0: do not; by default only a full run does
 */
const runs = Number(process.env.BENCH_FAILOVER_RUNS ?? 3)
const kinds = (process.env.BENCH_FAILOVER_KINDS ?? 'manual,kill,sentinel').split(',').map((k) => k.trim()) as FailoverKind[]
const nodeTimeoutMs = Number(process.env.BENCH_NODE_TIMEOUT_MS ?? 2000)
if (!(runs >= 1 && runs <= 20) || kinds.some((k) => !['manual', 'kill', 'sentinel'].includes(k)) || !(nodeTimeoutMs >= 500)) {
  throw new Error('BENCH_FAILOVER_RUNS is 1 to 20, BENCH_FAILOVER_KINDS a list of manual,kill,sentinel, BENCH_NODE_TIMEOUT_MS at least 500')
}
const full = process.env.BENCH_FAILOVER_RUNS === undefined && process.env.BENCH_FAILOVER_KINDS === undefined && process.env.BENCH_NODE_TIMEOUT_MS === undefined
const writeDocs = process.env.BENCH_DOCS === '1' || (process.env.BENCH_DOCS !== '0' && full)

process.on('exit', killAll)
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    killAll()
    process.exit(130)
  })
}

const startedAt = new Date()
const dir = join(root, 'bench', 'results', `failover-${startedAt.toISOString().replace(/[:.]/g, '-')}`)
mkdirSync(dir, { recursive: true })
const { text: machine } = describeMachine()
const code = codeVersion()
console.log(`failover benchmark: ${runs} run(s) of ${kinds.join(', ')}, cluster-node-timeout ${nodeTimeoutMs} ms`)

const results: FailoverResult[] = []
const load: number[] = []
for (const kind of kinds) {
  for (let run = 1; run <= runs; run++) {
    load.push(loadavg()[0] ?? 0)
    const r = await runFailover(kind, { nodeTimeoutMs, dir, run })
    results.push(r)
    console.log(`  ${kind} #${run}: promoted ${r.promotedMs} ms; API ${r.failed}/${r.writes} failed, back after ${r.apiBackMs} ms; ` +
      `expiries back after ${r.expiriesBackMs} ms (max lateness ${r.maxLatenessMs} ms); lost with the master ${r.lostWithMaster}, ` +
      `not handled ${r.notHandled}, duplicated ${r.duplicated}`)
  }
}

const s = (ms: number) => (ms / 1000).toFixed(2)
const label: Record<FailoverKind, string> = {
  manual: 'Cluster, manual `CLUSTER FAILOVER`', kill: 'Cluster, master SIGKILLed', sentinel: 'Sentinel, primary SIGKILLed'
}
const target: Record<FailoverKind, number> = { manual: 2000, kill: 5000, sentinel: 5000 }
const rows = [
  '| Failover | Run | Promoted after (s) | API writes failed | API errors over (s) | API writes back after (s) | Expiries back after (s) | Max lateness (s) | Acknowledged holds lost | Not handled | Duplicated |',
  '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ...results.map((r, i) => `| ${label[r.kind]} | ${(i % runs) + 1} | ${s(r.promotedMs)} | ${r.failed} of ${r.writes} | ${s(r.errorSpanMs)} | ` +
    `${s(r.apiBackMs)} | ${s(r.expiriesBackMs)} | ${s(r.maxLatenessMs)} | ${r.lostWithMaster} | ${r.notHandled} | ${r.duplicated} |`)
]
const targets = kinds.map((kind) => {
  const worst = Math.max(...results.filter((r) => r.kind === kind).map((r) => r.apiBackMs))
  return `- ${label[kind]}: API writes back within ${target[kind] / 1000} s: ${worst <= target[kind] ? 'met' : 'not met'} (worst ${s(worst)} s)`
})
const section = [
  `Command: \`${full ? '' : `BENCH_FAILOVER_RUNS=${runs} BENCH_FAILOVER_KINDS=${kinds.join(',')} BENCH_NODE_TIMEOUT_MS=${nodeTimeoutMs} `}npm run bench:failover\``,
  '',
  `Date: ${startedAt.toISOString().slice(0, 10)}`,
  '',
  `Machine: ${machine.replace(/ \(default settings.*$/, '')}; cluster-node-timeout ${nodeTimeoutMs} ms; ` +
    `1-min load average before each run: ${Math.min(...load).toFixed(2)} to ${Math.max(...load).toFixed(2)}`,
  '',
  `Code under test: ${code}`,
  '',
  ...rows,
  '',
  'Targets:',
  '',
  ...targets
].join('\n')
console.log('\n' + section)
writeFileSync(join(dir, 'summary.json'), JSON.stringify({ startedAt, machine, code, nodeTimeoutMs, results }, null, 2))
if (writeDocs) {
  writeDoc(join(root, 'docs', 'benchmarks.md'), section, 'failover')
  console.log('updated docs/benchmarks.md')
}
