import type { CallRecord } from './record.js'
import { noteLines, runHeader, type RunInfo } from './report.js'
import type { CellResult } from './run-cell.js'
import { runsOn, type Scenario } from './scenarios.js'
import { percentile } from './stats.js'
import type { BenchSystem } from './systems/types.js'

/**
 * Scenarios K (a worker joins, another leaves with SIGTERM) and L (a worker
 * stopped for 2 s): what the handler records say about shard ownership
 * (docs/delivery.md, "Shard ownership"), and the ownership section of
 * docs/benchmarks.md, written only with BENCH_DOCS=1.
 */
export interface Rebalance {
  /** From the joiner's start to the start of its first handler run, ms (undefined: it ran none). */
  joinerFirstRunMs?: number
  /** Handler runs (all calls, first or not) started by each worker. */
  runs: { leaver: number, stayer: number, joiner: number }
  /** Runs the leaver started after its SIGTERM was sent (it gives back what it has not started: any are runs it began before the signal reached it). */
  leaverStartsAfterLeave: number
  /** From the SIGTERM to the start of the last of those, ms (0: none). */
  leaverLastStartAfterLeaveMs: number
  /** Lateness p99 and max of the holds due in the second after the joiner started and after the SIGTERM, ms. */
  afterJoin?: { p99: number, max: number, holds: number }
  afterLeave?: { p99: number, max: number, holds: number }
}

export interface Stall {
  /** Runs the stalled worker started before the SIGSTOP and after the SIGCONT. */
  runsBefore: number
  runsAfter: number
  /** Lateness p99 and max of the holds due while the worker was stopped, ms. */
  dueDuringStop?: { p99: number, max: number, holds: number }
}

interface First { now: number, pid: number, late: number, deadline: number }

/** The first run of each expected id, with its lateness. */
function firstRuns (records: CallRecord[], deadlines: Map<string, number>): First[] {
  const first = new Map<string, CallRecord>()
  for (const r of records) {
    if (!deadlines.has(r.id)) continue
    const seen = first.get(r.id)
    if (!seen || r.now < seen.now) first.set(r.id, r)
  }
  return [...first.entries()].map(([id, r]) => {
    const deadline = r.deadline ?? (deadlines.get(id) as number)
    return { now: r.now, pid: r.pid, late: r.now - deadline, deadline }
  })
}

/** p99 and max lateness of the first runs of holds due in [from, to). */
function latenessBetween (runs: First[], from: number, to: number): { p99: number, max: number, holds: number } | undefined {
  const late = runs.filter((r) => r.deadline >= from && r.deadline < to).map((r) => r.late).sort((a, b) => a - b)
  if (late.length === 0) return undefined
  return { p99: percentile(late, 0.99), max: late[late.length - 1] as number, holds: late.length }
}

export function rebalanceStats (records: CallRecord[], deadlines: Map<string, number>, fault: Record<string, number>): Rebalance {
  const { joinAt, joinerPid, leaveAt, leaverPid } = fault
  const runs = { leaver: 0, stayer: 0, joiner: 0 }
  let leaverStartsAfterLeave = 0
  let leaverLastStartAfterLeaveMs = 0
  let joinerFirst: number | undefined
  for (const r of records) {
    if (!deadlines.has(r.id)) continue
    if (r.pid === joinerPid) {
      runs.joiner++
      joinerFirst = joinerFirst === undefined ? r.now : Math.min(joinerFirst, r.now)
    } else if (r.pid === leaverPid) {
      runs.leaver++
      if (leaveAt !== undefined && r.now >= leaveAt) {
        leaverStartsAfterLeave++
        leaverLastStartAfterLeaveMs = Math.max(leaverLastStartAfterLeaveMs, r.now - leaveAt)
      }
    } else {
      runs.stayer++
    }
  }
  const first = firstRuns(records, deadlines)
  return {
    ...joinerFirst !== undefined && joinAt !== undefined ? { joinerFirstRunMs: joinerFirst - joinAt } : {},
    runs,
    leaverStartsAfterLeave,
    leaverLastStartAfterLeaveMs,
    ...joinAt === undefined ? {} : { afterJoin: latenessBetween(first, joinAt, joinAt + 1000) },
    ...leaveAt === undefined ? {} : { afterLeave: latenessBetween(first, leaveAt, leaveAt + 1000) }
  }
}

export function stallStats (records: CallRecord[], deadlines: Map<string, number>, fault: Record<string, number>): Stall {
  const { stalledPid, stoppedAt, continuedAt } = fault
  const mine = records.filter((r) => r.pid === stalledPid && deadlines.has(r.id))
  return {
    runsBefore: mine.filter((r) => r.now < (stoppedAt ?? 0)).length,
    runsAfter: mine.filter((r) => r.now >= (continuedAt ?? Infinity)).length,
    ...stoppedAt !== undefined && continuedAt !== undefined
      ? { dueDuringStop: latenessBetween(firstRuns(records, deadlines), stoppedAt, continuedAt) }
      : {}
  }
}

const int = (n: number | undefined) => (n === undefined || Number.isNaN(n) ? '–' : Math.round(n).toLocaleString('en'))
const sec = (ms: number | undefined) => (ms === undefined || Number.isNaN(ms) ? '–' : (ms / 1000).toFixed(2))
const pm = (l: { p99: number, max: number, holds: number } | undefined) => (l ? `${int(l.p99)} / ${int(l.max)} (${int(l.holds)} holds)` : '–')
const NA = 'n/a: only checkout-expiry owns shards'

export function ownershipTable (results: CellResult[], scenarios: Scenario[], systems: BenchSystem[]): string {
  const rows = [
    '| Scenario | System | Expected | Delivered | Lost | Duplicated | Lateness p50 (ms) | p99 (ms) | max (ms) |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |'
  ]
  for (const s of scenarios) {
    for (const sys of systems) {
      const name = `${s.key}. ${s.title}`
      if (!runsOn(s, sys.name)) {
        rows.push(`| ${name} | ${sys.label} | ${NA} |${' |'.repeat(6)}`)
        continue
      }
      const r = results.find((x) => x.scenario === s.key && x.system === sys.name)
      if (!r) continue
      const d = r.delivery
      if (!d) {
        rows.push(`| ${name} | ${sys.label} | ${int(s.holds)} | error: ${(r.error ?? 'no result').replace(/\|/g, '/').slice(0, 80)} |${' |'.repeat(5)}`)
        continue
      }
      rows.push(`| ${name} | ${sys.label} | ${int(d.expected)} | ${int(d.delivered)} | ${int(d.lost)} | ${int(d.duplicated)} | ` +
        `${int(d.lateness?.p50)} | ${int(d.lateness?.p99)} | ${int(d.lateness?.max)} |`)
    }
  }
  return rows.join('\n')
}

/** Scenario K: the joiner, the leaver, and lateness around both. */
export function rebalanceTable (results: CellResult[], systems: BenchSystem[]): string | undefined {
  const k = results.filter((r) => r.scenario === 'K' && r.rebalance)
  if (k.length === 0) return undefined
  const rows = [
    '| System | Joiner started (s into the window) | Joiner subscribed (s after its start) | Joiner\'s first run (s after its start) | ' +
      'Runs: leaver / stayer / joiner | SIGTERM (s into the window) | Leaver exited (s after SIGTERM) | Leaver\'s runs started after the SIGTERM was sent | ' +
      'Holds due in the second after the join: p99 / max lateness (ms) | … after the SIGTERM |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |'
  ]
  for (const sys of systems) {
    const r = k.find((x) => x.system === sys.name)
    const b = r?.rebalance
    if (!r || !b) continue
    const f = r.fault
    rows.push(`| ${sys.label} | ${sec(f.joinAtMs)} | ${sec(f.joinerSubscribedMs)} | ${sec(b.joinerFirstRunMs)} | ` +
      `${int(b.runs.leaver)} / ${int(b.runs.stayer)} / ${int(b.runs.joiner)} | ${sec(f.leaveAtMs)} | ${sec(f.leaverExitMs)}` +
      `${f.leaverSigkilled ? ' (SIGKILLed)' : ''} | ${int(b.leaverStartsAfterLeave)}` +
      `${b.leaverStartsAfterLeave > 0 ? ` (the last ${sec(b.leaverLastStartAfterLeaveMs)} s after)` : ''} | ${pm(b.afterJoin)} | ${pm(b.afterLeave)} |`)
  }
  return rows.join('\n')
}

/** Scenario L: the stop, whether the worker was reaped, and lateness of what fell due meanwhile. */
export function stallTable (results: CellResult[], systems: BenchSystem[]): string | undefined {
  const l = results.filter((r) => r.scenario === 'L' && r.stall)
  if (l.length === 0) return undefined
  const rows = [
    '| System | SIGSTOP (s into the window) | Stopped for (s) | Reaped | Stalled worker\'s runs before / after | Holds due while stopped: p99 / max lateness (ms) |',
    '| --- | ---: | ---: | --- | ---: | ---: |'
  ]
  for (const sys of systems) {
    const r = l.find((x) => x.system === sys.name)
    const st = r?.stall
    if (!r || !st) continue
    const f = r.fault
    rows.push(`| ${sys.label} | ${sec(f.stopAtMs)} | ${sec(f.stoppedMs)} | ${f.reaped === undefined ? '–' : f.reaped ? '**yes**' : 'no'} | ` +
      `${int(st.runsBefore)} / ${int(st.runsAfter)} | ${pm(st.dueDuringStop)} |`)
  }
  return rows.join('\n')
}

export function ownershipSection (info: RunInfo, results: CellResult[], scenarios: Scenario[], systems: BenchSystem[]): string {
  const own = scenarios.filter((s) => s.ownership)
  const cells = results.filter((r) => own.some((s) => s.key === r.scenario))
  const notes = noteLines(cells)
  const rebalance = rebalanceTable(cells, systems)
  const stall = stallTable(cells, systems)
  return [
    ...runHeader(info),
    '',
    ownershipTable(cells, own, systems),
    ...(rebalance
      ? ['', 'Rebalance (scenario K): the third worker\'s start and first handler run, each worker\'s runs, the SIGTERMed worker\'s exit, and lateness of the holds due just after each change:', '', rebalance]
      : []),
    ...(stall
      ? ['', 'Stall (scenario L): a worker stopped with SIGSTOP keeps its shards and claims when the stop is shorter than the lease less one heartbeat interval (2.5 s); "Reaped" is whether it logged that the others took its shards over:', '', stall]
      : []),
    ...(notes.length > 0 ? ['', 'Notes from the run:', '', ...notes] : [])
  ].join('\n')
}

/** The section in docs/benchmarks.md, added above "## Failover" the first time it is written. */
export const OWNERSHIP_DOC = {
  name: 'ownership',
  heading: 'Shard ownership: rebalance and stall',
  intro: '`BENCH_SCENARIOS=K,L BENCH_SYSTEMS=ours BENCH_DOCS=1 npm run bench:expiry` runs two shard ownership scenarios, for checkout-expiry only ' +
    '(keyspace events and BullMQ own no shards): K, a third worker joins two and then one of the first two is stopped with SIGTERM; ' +
    'L, one of two workers is stopped (SIGSTOP) for 2 s. They run only when named, and this section is rewritten only with `BENCH_DOCS=1`.',
  before: '## Failover'
}
