import { mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Redis } from 'ioredis'
import type { KeyFormat } from '../src/keys.js'
import { createHold, endHold, getCheckout } from '../src/store/checkout-store.js'
import { root, spawnNode } from './children.js'
import { cpuBetween, sampleCpu } from './cpu.js'
import { codeVersion } from './machine.js'
import {
  envNumber, envSizes, fmt, guardRun, holdId, machineLine, openRecordedStore, payloadOfSize, pool,
  settledMemory, statsDelta, warmUp, type BenchStore, type CommandStats
} from './memory-kit.js'
import { startRedisServer } from './redis-server.js'
import { runHeader, writeDoc } from './report.js'
import { adminClient } from './util.js'

/**
 * `npm run bench:memory` (second part): key format 3 (docs/keys.md) at
 * 100,000 and 1,000,000 holds, each case on its own fresh redis-server:
 *  - memory per hold: pending without and with a 200-byte payload, on the
 *    shipped redis.conf (`hash-max-listpack-value 512`) and on stock limits
 *    (64), ended holds; baselines a plain `SET … PX` key and format 1;
 *  - Redis time per create and per read (`INFO commandstats`: usec and
 *    calls of EVALSHA over a measured phase of new creates, then reads of
 *    loaded holds), with format 1 and plain `SET`/`GET` as baselines.
 * Holds are made by the store's own functions (createHold, endHold), so
 * whatever the scripts of the format do is what is measured.
 *
 *   BENCH_MEMORY_SIZES  comma list of hold counts (default 100000,1000000)
 *   BENCH_MEMORY_PARALLEL  cases run at once, each on its own redis-server (default 1). The
 *                       memory figures do not depend on it; the Redis times per call do
 *                       (cases compete for the CPU), so a run with more says so.
 *   BENCH_MEMORY_CASES  comma list of cases (default all: baseline,format-1,pending,payload-shipped,payload-stock);
 *                       a run of some of them leaves docs/benchmarks.md alone
 *   BENCH_MEMORY_LOADERS  processes that load a case's holds side by side (default 4)
 *   BENCH_MAX_MINUTES   hard cap on the whole run (default 90)
 *   BENCH_DOCS          1: update docs/benchmarks.md, 0: do not; by default only a full run does
 */
const DEFAULT_SIZES = [100_000, 1_000_000]
const SIZES = envSizes('BENCH_MEMORY_SIZES', DEFAULT_SIZES)
const MAX_MINUTES = envNumber('BENCH_MAX_MINUTES', 90, 1, 240)
const PARALLEL = envNumber('BENCH_MEMORY_PARALLEL', 1, 1, 8)
/**
 * Loader processes per case (bench/load-holds.ts), each with its slice of
 * the ids: one Node process spends about 300 µs of CPU per createHold, more
 * than Redis spends on the script, so one process alone limits the load.
 */
const LOADERS = envNumber('BENCH_MEMORY_LOADERS', 4, 1, 16)
const TTL_MS = 6 * 3_600_000
/** endHold calls in flight. */
const IN_FLIGHT = 200
const CASE_NAMES: CaseName[] = ['baseline', 'format-1', 'pending', 'payload-shipped', 'payload-stock']
const PICKED = (process.env.BENCH_MEMORY_CASES ?? '').split(',').map((c) => c.trim()).filter(Boolean)
for (const c of PICKED) if (!(CASE_NAMES as string[]).includes(c)) throw new Error(`BENCH_MEMORY_CASES: unknown case "${c}"; expected some of ${CASE_NAMES.join(',')}`)
/** The measured phase of Redis time per call: new creates, then reads of loaded holds, this many each. */
const COST_CALLS = 20_000
const COST_IN_FLIGHT = 100
/**
 * Ended holds are measured at this size and below only: ending every hold
 * one by one through endHold takes longer than creating it (about 13 min for
 * 1M on a loaded 2-core machine), and an ended hold is a record of its own
 * whose size does not depend on how many others there are.
 */
const ENDED_MAX = 100_000
const PAYLOAD = payloadOfSize()
const PAYLOAD_LABEL = `${JSON.stringify(PAYLOAD).length} B`
const SHIPPED_CONF = join(root, 'redis.conf')
const TARGETS = { pending: 100, payloadShipped: 320, payloadStock: 430, ended: 200, createUs: 30, readUs: 12 }

type CaseName = 'baseline' | 'format-1' | 'pending' | 'payload-shipped' | 'payload-stock'
interface Case {
  name: CaseName
  label: string
  /** Layout of the holds; none for the plain-key baseline. */
  format?: KeyFormat
  shipped: boolean
  payload: boolean
  /** Also measure Redis time per create and read. */
  cost: boolean
  /** Then end every hold and measure them kept for retention (up to this many holds). */
  endUpTo: number
}
const CASES: Case[] = [
  { name: 'baseline', label: 'plain `SET <key> 1 PX <ttl>` per id', shipped: true, payload: false, cost: true, endUpTo: 0 },
  { name: 'format-1', label: 'format 1, pending, no payload', format: 1, shipped: true, payload: false, cost: true, endUpTo: 0 },
  { name: 'pending', label: 'format 3, pending, no payload', format: 3, shipped: true, payload: false, cost: true, endUpTo: ENDED_MAX },
  { name: 'payload-shipped', label: `format 3, pending, ${PAYLOAD_LABEL} payload, shipped redis.conf`, format: 3, shipped: true, payload: true, cost: false, endUpTo: ENDED_MAX },
  { name: 'payload-stock', label: `format 3, pending, ${PAYLOAD_LABEL} payload, stock limits (64)`, format: 3, shipped: false, payload: true, cost: false, endUpTo: 0 }
]

interface Cost {
  /** Redis µs per call of the script (EVALSHA) or command, from the commandstats delta. */
  createUs: number
  readUs: number
  /** redis-server CPU time (user + sys) per call over the phase, µs: the server's own work, all commands included. */
  createCpuUs: number
  readCpuUs: number
  /** Per call: the commands the script ran, with their µs (inner commands count inside the script's own µs too). */
  createInner: Record<string, { calls: number, us: number }>
  readInner: Record<string, { calls: number, us: number }>
  /** 1-min load average before and after the phase. */
  load: [number, number]
}

interface Result {
  holds: number
  case: CaseName
  perHold: number
  /** Ended holds (every hold of the case, the measured creates included), B per hold. */
  endedPerHold?: number
  cost?: Cost
  loadMs: number
  endMs?: number
  totalMs: number
}

const ids = (n: number) => Array.from({ length: n }, (_v, i) => holdId('ord-', i))
const load1 = () => Number(loadavg()[0]?.toFixed(2))

function perCall (delta: CommandStats, script: string[]): { us: number, calls: number, inner: Record<string, { calls: number, us: number }> } {
  const mine = script.map((name) => delta.get(name) ?? { calls: 0, usec: 0 })
  const calls = mine.reduce((s, c) => s + c.calls, 0)
  const usec = mine.reduce((s, c) => s + c.usec, 0)
  const inner: Record<string, { calls: number, us: number }> = {}
  for (const [name, c] of delta) {
    if (script.includes(name) || name.startsWith('config')) continue
    inner[name] = { calls: c.calls / Math.max(1, calls), us: c.usec / Math.max(1, calls) }
  }
  return { us: usec / Math.max(1, calls), calls, inner }
}

/**
 * Redis time per call over a phase of `COST_CALLS` calls, from the
 * commandstats delta of `commands`; and redis-server's CPU time (user + sys)
 * per call over the phase, which waiting for a CPU does not inflate.
 */
async function phase (admin: Redis, commands: string[], op: (i: number) => Promise<unknown>): Promise<ReturnType<typeof perCall> & { cpuUs: number }> {
  const from = await sampleCpu(admin, [])
  await pool(COST_CALLS, COST_IN_FLIGHT, async (i) => { await op(i) })
  const to = await sampleCpu(admin, [])
  const measured = perCall(statsDelta(from.commands, to.commands), commands)
  if (measured.calls < COST_CALLS) throw new Error(`commandstats counted ${measured.calls} calls of ${commands.join('/')} for ${COST_CALLS} operations`)
  return { ...measured, cpuUs: cpuBetween(from, to).redisMs * 1000 / COST_CALLS }
}

/** Loads holds ord-0 … ord-(n-1) with LOADERS processes, each its own slice. */
async function load (url: string, n: number, c: Case): Promise<void> {
  const size = Math.ceil(n / LOADERS)
  const loaders = Array.from({ length: LOADERS }, (_v, k) => ({ from: k * size, to: Math.min(n, (k + 1) * size) })).filter((r) => r.to > r.from)
  const logs = loaders.map((_r, k) => join(tmpdir(), `ce-bench-loader-${process.pid}-${n}-${c.name}-${k}.log`))
  const children = loaders.map((r, k) => spawnNode('bench/load-holds.ts', {
    BENCH_LOAD_URL: url,
    BENCH_LOAD_FROM: String(r.from),
    BENCH_LOAD_TO: String(r.to),
    BENCH_LOAD_TTL_MS: String(TTL_MS),
    BENCH_LOAD_FORMAT: String(c.format ?? 1),
    BENCH_LOAD_PLAIN: c.format === undefined ? '1' : '0',
    BENCH_LOAD_PAYLOAD: c.payload ? '1' : '0'
  }, logs[k] as string))
  await Promise.all(children.map(async (child) => await child.exited))
  for (const log of logs) rmSync(log, { force: true })
  const failed = children.find((child) => child.proc.exitCode !== 0)
  if (failed) throw new Error(`a loader exited with ${failed.proc.exitCode}:\n${failed.output().slice(-2000)}`)
}

/** Loaded holds spread over the whole index, in an order unrelated to their shard. */
const spread = (n: number, i: number) => (i * 7919) % n

async function measure (n: number, c: Case): Promise<Result> {
  const began = Date.now()
  const redis = await startRedisServer(c.shipped ? { config: SHIPPED_CONF } : {})
  const admin: Redis = adminClient(redis.port, 'bench:memory-admin')
  let store: BenchStore | undefined
  try {
    // The plain keys get format 1's key names (`…{tag}:timer:<id>`): about as long as a hold's.
    store = await openRecordedStore(redis.url, 'bench:producer', c.format ?? 1)
    const s = store
    const list = ids(n)
    if (c.format !== undefined) await warmUp(s, TTL_MS)
    const before = await settledMemory(admin)
    const t = Date.now()
    await load(redis.url, n, c)
    const loadMs = Date.now() - t
    const perHold = (await settledMemory(admin) - before) / n
    console.log(`  ${fmt(n)} ${c.name}: ${fmt(perHold)} B per hold (loaded in ${(loadMs / 1000).toFixed(1)} s)`)
    const result: Result = { holds: n, case: c.name, perHold, loadMs, totalMs: 0 }

    let extra: string[] = []
    if (c.cost) {
      const load: [number, number] = [load1(), 0]
      // The read script loaded before the phase, so no NOSCRIPT round counts in it.
      if (c.format !== undefined) await getCheckout(s.ctx, list[0] as string)
      const newIds = Array.from({ length: COST_CALLS }, (_v, i) => holdId('new-', i))
      const create = c.format === undefined
        ? await phase(admin, ['set'], async (i) => await s.redis.set(s.keys.order(newIds[i] as string).timer, '1', 'PX', TTL_MS))
        : await phase(admin, ['evalsha', 'eval'], async (i) => await createHold(s.ctx, { id: newIds[i] as string, ttlMs: TTL_MS }))
      const read = c.format === undefined
        ? await phase(admin, ['get'], async (i) => await s.redis.get(s.keys.order(list[spread(n, i)] as string).timer))
        : await phase(admin, ['evalsha', 'eval'], async (i) => await getCheckout(s.ctx, list[spread(n, i)] as string))
      load[1] = load1()
      result.cost = { createUs: create.us, readUs: read.us, createCpuUs: create.cpuUs, readCpuUs: read.cpuUs, createInner: create.inner, readInner: read.inner, load }
      console.log(`    Redis µs per create ${create.us.toFixed(1)} (CPU ${create.cpuUs.toFixed(1)}), per read ${read.us.toFixed(1)} (CPU ${read.cpuUs.toFixed(1)}) (load ${load.join(' → ')})`)
      extra = newIds
    }

    if (n <= c.endUpTo) {
      const all = [...list, ...extra]
      const t2 = Date.now()
      await pool(all.length, IN_FLIGHT, async (i) => { await endHold(s.ctx, all[i] as string, 'completed') })
      result.endMs = Date.now() - t2
      result.endedPerHold = (await settledMemory(admin) - before) / all.length
      console.log(`    ended: ${fmt(result.endedPerHold)} B per hold (ended in ${(result.endMs / 1000).toFixed(1)} s)`)
    }
    result.totalMs = Date.now() - began
    return result
  } finally {
    await store?.close()
    admin.disconnect()
    await redis.destroy()
  }
}

const verdict = (value: number | undefined, limit: number, unit: string) => value === undefined
  ? 'not measured'
  : value <= limit ? `met (${fmt(limit - value, unit === 'µs' ? 1 : 0)} ${unit} under)` : `**missed** by ${fmt(value - limit, unit === 'µs' ? 1 : 0)} ${unit} (${fmt(100 * (value / limit - 1))}%)`

function section (results: Result[], command: string, date: string): string {
  const get = (n: number, name: CaseName) => results.find((r) => r.holds === n && r.case === name)
  const sizes = SIZES
  const bytes = (n: number, name: CaseName, pick: (r: Result) => number | undefined = (r) => r.perHold) => {
    const r = get(n, name)
    return r ? pick(r) : undefined
  }
  const ratio = (a: number | undefined, b: number | undefined) => a === undefined || b === undefined ? '–' : `${(a / b).toFixed(2)}×`
  const lines = [
    ...runHeader({ command, date, machine: machineLine(), code: codeVersion() }),
    '',
    `Each case on a fresh redis-server started with the shipped \`redis.conf\` (\`hash-max-listpack-value 512\`; persistence off for the run) unless it says stock limits (Redis defaults, 64). Holds made with the store's \`createHold\` (ids of 25 characters, default \`KEY_PREFIX\` and \`KEY_SHARDS\`, ${LOADERS} loader processes with 200 in flight each), ended with \`endHold\`; memory is \`used_memory\` after minus before, divided by the number of holds, once Redis has settled. Payload: a JSON object of ${PAYLOAD_LABEL}.${PARALLEL > 1 ? ` ${PARALLEL} cases ran at once, each on its own redis-server: the Redis times below include that competition for the CPU.` : ''}`,
    '',
    '**Memory per hold** (B)',
    '',
    `| Case | ${sizes.map((n) => `${fmt(n)} holds`).join(' | ')} | Ratio to plain key (${fmt(sizes.at(-1))}) | Target | Verdict (worst size) |`,
    `| --- | ${sizes.map(() => '---:').join(' | ')} | ---: | ---: | --- |`
  ]
  const memRow = (label: string, name: CaseName, limit?: number, pick?: (r: Result) => number | undefined) => {
    const cells = sizes.map((n) => bytes(n, name, pick))
    const known = cells.filter((v): v is number => v !== undefined)
    const worst = known.length > 0 ? Math.max(...known) : undefined
    const last = sizes.at(-1) as number
    lines.push(`| ${label} | ${cells.map((v) => fmt(v)).join(' | ')} | ${ratio(cells.at(-1), bytes(last, 'baseline'))} | ${limit === undefined ? '' : `≤ ${limit}`} | ${limit === undefined ? '' : verdict(worst, limit, 'B')} |`)
  }
  memRow('plain `SET <key> 1 PX <ttl>` per id (baseline)', 'baseline')
  memRow('format 1, pending, no payload (baseline)', 'format-1')
  memRow('format 3, pending, no payload', 'pending', TARGETS.pending)
  memRow(`format 3, pending, ${PAYLOAD_LABEL} payload, shipped redis.conf`, 'payload-shipped', TARGETS.payloadShipped)
  memRow(`format 3, pending, ${PAYLOAD_LABEL} payload, stock limits (64)`, 'payload-stock', TARGETS.payloadStock)
  memRow('format 3, ended (completed, kept for retention), no payload', 'pending', TARGETS.ended, (r) => r.endedPerHold)
  memRow(`format 3, ended, ${PAYLOAD_LABEL} payload, shipped redis.conf`, 'payload-shipped', undefined, (r) => r.endedPerHold)

  lines.push('', `**Redis time per call** (µs, \`INFO commandstats\`): usec over calls of \`evalsha\` (each store call is one script), or of \`SET\` / \`GET\` for the baseline, over ${fmt(COST_CALLS)} creates of new holds, then ${fmt(COST_CALLS)} reads of loaded holds, ${COST_IN_FLIGHT} in flight, on top of the loaded holds.`, '',
    '| Holds loaded | Operation | Plain key | Format 1 | Format 3 | Format 3 / plain | Format 3 / format 1 | Target | Verdict | redis-server CPU µs per call: plain / format 1 / format 3 | Load average during the phase |',
    '| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- | --- |')
  for (const n of sizes) {
    for (const op of ['create', 'read'] as const) {
      const pick = (r: Result | undefined) => r?.cost ? (op === 'create' ? r.cost.createUs : r.cost.readUs) : undefined
      const plain = pick(get(n, 'baseline'))
      const f1 = pick(get(n, 'format-1'))
      const f3 = pick(get(n, 'pending'))
      const limit = op === 'create' ? TARGETS.createUs : TARGETS.readUs
      const cpu = (['baseline', 'format-1', 'pending'] as const).map((name) => { const c = get(n, name)?.cost; return c ? (op === 'create' ? c.createCpuUs : c.readCpuUs) : undefined })
      const loads = (['baseline', 'format-1', 'pending'] as const).map((name) => get(n, name)?.cost?.load).filter((l) => l !== undefined).flat()
      lines.push(`| ${fmt(n)} | ${op === 'create' ? 'create (`SET` / `createHold`)' : 'read (`GET` / `getCheckout`)'} | ${fmt(plain, 1)} | ${fmt(f1, 1)} | ${fmt(f3, 1)} | ${ratio(f3, plain)} | ${ratio(f3, f1)} | ≤ ${limit} | ${verdict(f3, limit, 'µs')} | ${cpu.map((v) => fmt(v, 1)).join(' / ')} | ${loads.length > 0 ? `${Math.min(...loads).toFixed(1)}–${Math.max(...loads).toFixed(1)}` : '–'} |`)
    }
  }
  const largest = sizes.at(-1) as number
  const inner = (r: Result | undefined, op: 'create' | 'read') => {
    const x = r?.cost?.[op === 'create' ? 'createInner' : 'readInner']
    if (!x) return '–'
    return Object.entries(x).sort((a, b) => b[1].us - a[1].us).filter(([, v]) => v.calls >= 0.01)
      .map(([name, v]) => `${name} ${fmt(v.calls, 2)}× ${fmt(v.us, 1)} µs`).join(', ')
  }
  lines.push('', `Commands run inside the scripts at ${fmt(largest)} holds, per call (count, µs; inside the script's time above):`, '',
    `- format 3 create: ${inner(get(largest, 'pending'), 'create')}`,
    `- format 3 read: ${inner(get(largest, 'pending'), 'read')}`,
    `- format 1 create: ${inner(get(largest, 'format-1'), 'create')}`,
    `- format 1 read: ${inner(get(largest, 'format-1'), 'read')}`)
  lines.push('', 'Time each case took (load, end of every hold where measured, whole case with its fresh Redis):', '',
    ...sizes.flatMap((n) => results.filter((r) => r.holds === n).map((r) =>
      `- ${fmt(n)} ${r.case}: loaded in ${(r.loadMs / 1000).toFixed(0)} s${r.endMs === undefined ? '' : `, ended in ${(r.endMs / 1000).toFixed(0)} s`}, case ${(r.totalMs / 1000).toFixed(0)} s`)))
  return lines.join('\n')
}

async function main (): Promise<void> {
  const stopGuard = guardRun('bench:memory (format 3)', MAX_MINUTES * 60_000)
  const startedAt = new Date()
  console.log(`bench:memory (format 3): sizes ${SIZES.map((s) => fmt(s)).join(', ')}`)
  const results: Result[] = []
  const errors: string[] = []
  // The longest cases first, so that with BENCH_MEMORY_PARALLEL the run ends with the short ones.
  const cases = CASES.filter((c) => PICKED.length === 0 || PICKED.includes(c.name))
  const tasks = [...SIZES].sort((a, b) => b - a).flatMap((n) => [...cases].reverse().map((c) => ({ n, c })))
  await pool(tasks.length, PARALLEL, async (i) => {
    const { n, c } = tasks[i] as { n: number, c: Case }
    try {
      results.push(await measure(n, c))
    } catch (err) {
      errors.push(`${fmt(n)} ${c.name}: ${err instanceof Error ? err.message : String(err)}`)
      console.log(`  ${errors.at(-1) ?? ''}`)
    }
  })
  const overrides = ['BENCH_MEMORY_SIZES', 'BENCH_MEMORY_CASES', 'BENCH_MEMORY_PARALLEL', 'BENCH_MAX_MINUTES'].filter((v) => process.env[v]).map((v) => `${v}=${process.env[v]}`)
  const text = section(results, [...overrides, 'npm run bench:memory'].join(' '), startedAt.toISOString().slice(0, 10)) +
    errors.map((e) => `\n- failed: ${e}`).join('')
  console.log('\n' + text)
  const dir = join(root, 'bench', 'results')
  mkdirSync(dir, { recursive: true })
  const file = join(dir, `memory-format-3-${startedAt.toISOString().replace(/[:.]/g, '-')}.json`)
  writeFileSync(file, JSON.stringify(results, null, 2))
  console.log(`\nraw results: ${file}; whole run ${((Date.now() - startedAt.getTime()) / 60_000).toFixed(1)} min`)
  const full = SIZES.length === DEFAULT_SIZES.length && DEFAULT_SIZES.every((s) => SIZES.includes(s)) && PICKED.length === 0
  if (process.env.BENCH_DOCS === '1' || (process.env.BENCH_DOCS !== '0' && full && errors.length === 0)) {
    writeDoc(join(root, 'docs', 'benchmarks.md'), text, 'memory-format-3')
    console.log('updated docs/benchmarks.md')
  }
  stopGuard()
  process.exitCode = errors.length > 0 ? 1 : 0
}

await main()
