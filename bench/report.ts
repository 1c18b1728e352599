import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import type { CellResult } from './run-cell.js'
import type { Scenario } from './scenarios.js'
import type { BenchSystem } from './systems/types.js'

/**
 * The Markdown the run prints and keeps in docs/benchmarks.md, between two
 * marker comments: everything outside them is written by hand and kept.
 */
export const TARGETS = { p99: 50, max: 250 }

export interface RunInfo {
  command: string
  date: string
  machine: string
  code: string
}

const fmt = (n: number | undefined) => (n === undefined || Number.isNaN(n) ? '–' : Math.round(n).toLocaleString('en'))

export function resultsTable (results: CellResult[], scenarios: Scenario[], systems: BenchSystem[]): string {
  const rows = [
    '| Scenario | System | Expected | Delivered | Lost | Duplicated | Lateness p50 (ms) | p99 (ms) | max (ms) |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |'
  ]
  for (const s of scenarios) {
    for (const sys of systems) {
      const r = results.find((x) => x.scenario === s.key && x.system === sys.name)
      if (!r) continue
      const name = `${s.key}. ${s.title}`
      const d = r.delivery
      if (!d) {
        rows.push(`| ${name} | ${sys.label} | ${fmt(s.holds)} | error: ${(r.error ?? 'no result').replace(/\|/g, '/').slice(0, 80)} | | | | | |`)
        continue
      }
      rows.push(`| ${name} | ${sys.label} | ${fmt(d.expected)} | ${fmt(d.delivered)} | ${fmt(d.lost)} | ${fmt(d.duplicated)} | ` +
        `${fmt(d.lateness?.p50)} | ${fmt(d.lateness?.p99)} | ${fmt(d.lateness?.max)} |`)
    }
  }
  return rows.join('\n')
}

/** CPU the workers and Redis used while the holds came due, and how long that collection ran. */
export function cpuTable (results: CellResult[], scenarios: Scenario[], systems: BenchSystem[]): string {
  const rows = [
    '| Scenario | System | Collection (s) | Worker CPU (s) | Redis CPU (s) |',
    '| --- | --- | ---: | ---: | ---: |'
  ]
  const sec = (ms: number | undefined) => (ms === undefined || Number.isNaN(ms) ? '–' : (ms / 1000).toFixed(1))
  for (const s of scenarios) {
    for (const sys of systems) {
      const r = results.find((x) => x.scenario === s.key && x.system === sys.name)
      if (!r?.cpu) continue
      rows.push(`| ${s.key}. ${s.title} | ${sys.label} | ${sec(r.timings.collectMs)} | ${sec(r.cpu.workersMs)} | ${sec(r.cpu.redisMs)} |`)
    }
  }
  return rows.join('\n')
}

/** Scenario F: seconds from the SIGKILL to the last taken-over run, each system against checkout-expiry. */
export function takeoverTable (results: CellResult[], systems: BenchSystem[]): string | undefined {
  const f = results.filter((r) => r.scenario === 'F' && r.takeover)
  if (f.length === 0) return undefined
  const ours = f.find((r) => r.system === 'ours')?.takeover?.lastStartAfterKillMs
  const rows = [
    '| System | Taken over | Kill to last taken-over run (s) | × checkout-expiry | Lost | Duplicated |',
    '| --- | ---: | ---: | ---: | ---: | ---: |'
  ]
  for (const sys of systems) {
    const r = f.find((x) => x.system === sys.name)
    if (!r?.takeover) continue
    const s = r.takeover.lastStartAfterKillMs
    const ratio = ours && ours > 0 ? (s / ours).toFixed(1) : '–'
    rows.push(`| ${sys.label} | ${fmt(r.takeover.takenOver)} | ${(s / 1000).toFixed(2)} | ${ratio} | ${fmt(r.delivery?.lost)} | ${fmt(r.delivery?.duplicated)} |`)
  }
  return rows.join('\n')
}

/** checkout-expiry against the headline targets of scenario A. */
export function targetLines (results: CellResult[]): string[] {
  const a = results.find((r) => r.scenario === 'A' && r.system === 'ours')
  const d = a?.delivery
  if (!d?.lateness) return ['Scenario A was not run for checkout-expiry, or it failed: no target check.']
  const check = (ok: boolean) => (ok ? 'met' : '**missed**')
  return [
    `- lateness p99 ≤ ${TARGETS.p99} ms: ${check(d.lateness.p99 <= TARGETS.p99)} (${fmt(d.lateness.p99)} ms)`,
    `- lateness max ≤ ${TARGETS.max} ms: ${check(d.lateness.max <= TARGETS.max)} (${fmt(d.lateness.max)} ms)`,
    `- zero lost: ${check(d.lost === 0)} (${fmt(d.lost)})`,
    `- zero duplicated: ${check(d.duplicated === 0)} (${fmt(d.duplicated)})`
  ]
}

/** The lines every generated section opens with: how, when, where and on what code it ran. */
export function runHeader (info: RunInfo): string[] {
  return [
    `Command: \`${info.command}\``,
    '',
    `Date: ${info.date}`,
    '',
    `Machine: ${info.machine}`,
    '',
    `Code under test: ${info.code}`
  ]
}

/** The run's notes, one line per note, prefixed with its cell. */
export const noteLines = (results: CellResult[]): string[] =>
  results.flatMap((r) => r.notes.map((n) => `- ${r.scenario}/${r.system}: ${n}`))

export function generatedSection (info: RunInfo, table: string, cpu: string, results: CellResult[], takeover?: string): string {
  const notes = noteLines(results)
  return [
    ...runHeader(info),
    '',
    table,
    '',
    'Headline targets for checkout-expiry (scenario A):',
    '',
    ...targetLines(results),
    '',
    'CPU time used from the moment every hold was scheduled until collection ended (Redis: since its restart in scenario E; in D the workers\' start-up is included):',
    '',
    cpu,
    ...(takeover
      ? ['', 'Takeover after SIGKILL (scenario F): holds due before the kill whose run the killed worker never finished, and the seconds from the kill until the last of them started on another worker:', '', takeover]
      : []),
    ...(notes.length > 0 ? ['', 'Notes from the run:', '', ...notes] : [])
  ].join('\n')
}

/** Where writeDoc adds a section whose markers the doc does not have yet. */
export interface NewSection {
  /** Its `## ` heading. */
  heading: string
  /** A paragraph under the heading, above the markers. */
  intro: string
  /** The heading line it goes above; at the end of the doc when absent. */
  before: string
}

/**
 * Replaces the generated section `<!-- bench:<name>:start -->` … `end -->`
 * of the doc, creating the doc from a skeleton if it is missing. With
 * `add`, a doc without the markers gets them, under a heading of their own.
 */
export function writeDoc (path: string, section: string, name = 'results', add?: NewSection): void {
  const START = `<!-- bench:${name}:start -->`
  const END = `<!-- bench:${name}:end -->`
  let current = existsSync(path)
    ? readFileSync(path, 'utf8')
    : `# Benchmarks\n\n${START}\n${END}\n`
  if (add && !current.includes(START) && !current.includes(END)) {
    const block = `## ${add.heading}\n\n${add.intro}\n\n${START}\n${END}\n`
    const at = current.indexOf(`\n${add.before}\n`)
    current = at < 0
      ? current.replace(/\n*$/, '\n\n') + block
      : current.slice(0, at + 1) + block + '\n' + current.slice(at + 1)
  }
  const from = current.indexOf(START)
  const to = current.indexOf(END)
  if (from < 0 || to < from) throw new Error(`${path} has no ${START} ... ${END} section to replace`)
  writeFileSync(path, current.slice(0, from + START.length) + '\n' + section + '\n' + current.slice(to))
}
