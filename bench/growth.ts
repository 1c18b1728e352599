import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import type { Redis } from 'ioredis'
import { createHold, getCheckout } from '../src/store/checkout-store.js'
import { root, type NodeChild } from './children.js'
import { cpuBetween, sampleCpu, type CpuUse } from './cpu.js'
import { codeVersion } from './machine.js'
import { createHolds, envNumber, envSizes, fmt, guardRun, holdId, machineLine, openRecordedStore, pool, warmUp, type BenchStore } from './memory-kit.js'
import { readRecords } from './record.js'
import { startRedisServer } from './redis-server.js'
import { runHeader, writeDoc } from './report.js'
import { percentile, summarize, type Delivery } from './stats.js'
import { ours } from './systems/ours.js'
import { adminClient, sleep } from './util.js'

/**
 * `npm run bench:growth`: how the cost of create, read and expiry grows with
 * the number of pending holds. For each size, on a fresh redis-server: the
 * background holds (due hours later) made with createHold, then
 *  - create: createHold one at a time (client latency), then many at a time
 *    (client time, Redis commands incl. those run inside scripts, Redis CPU);
 *  - read: getCheckout of background holds, the same figures;
 *  - expiry: one real worker process (workers/expiry-worker.ts with
 *    bench/handler.ts) and holds due at a steady rate on top of the
 *    background: lateness, Redis commands and CPU, worker CPU per expiry.
 *
 *   BENCH_GROWTH_SIZES    comma list of pending-hold counts (default 1000,100000,1000000)
 *   BENCH_GROWTH_RATE     holds due per second (default 1000)
 *   BENCH_GROWTH_SECONDS  how long holds come due (default 10)
 *   BENCH_MAX_MINUTES     hard cap on the whole run (default 15)
 *   BENCH_DOCS            1: update docs/benchmarks.md, 0: do not; by default only a full run does
 */
const DEFAULT_SIZES = [1000, 100_000, 1_000_000]
const SIZES = envSizes('BENCH_GROWTH_SIZES', DEFAULT_SIZES)
const RATE = envNumber('BENCH_GROWTH_RATE', 1000, 1, 20_000)
const SECONDS = envNumber('BENCH_GROWTH_SECONDS', 10, 1, 120)
const MAX_MINUTES = envNumber('BENCH_MAX_MINUTES', 15, 1, 120)
const TARGET = { pending: 1_000_000, rate: 1000, p99: 10 }
/** Background holds are due from 2 h on, spread over an hour. */
const BACKGROUND_TTL_MS = 2 * 3_600_000
const ONE_AT_A_TIME = 2000
const MANY = 20_000
const IN_FLIGHT = 100
const IDLE_MS = 3000
/** Due holds are created at least this long before their deadline (the worker re-reads deadlines every 250 ms). */
const MIN_LEAD_MS = 2000

interface OpCost {
  /** Client latency of one call at a time, µs. */
  p50Us: number
  p99Us: number
  /** Client wall time per call with IN_FLIGHT calls in flight, µs. */
  wallUs: number
  commands: number
  byCommand: Record<string, number>
  redisCpuUs: number
}

interface ExpiryCost {
  due: number
  delivery: Delivery
  commands: number
  byCommand: Record<string, number>
  redisCpuUs: number
  workerCpuUs: number
  windowMs: number
  /** Per second with the worker running and nothing due. */
  idle: { commands: number, redisCpuMs: number, workerCpuMs: number }
}

interface Cell {
  pending: number
  backgroundMs: number
  create?: OpCost
  read?: OpCost
  expiry?: ExpiryCost
  error?: string
}

/** Calls per command between two samples, without the benchmark's own INFO. */
function calls (use: CpuUse): { total: number, byCommand: Record<string, number> } {
  const byCommand: Record<string, number> = {}
  let total = 0
  for (const [name, c] of Object.entries(use.commands)) {
    if (name === 'info') continue
    byCommand[name] = c.calls
    total += c.calls
  }
  return { total, byCommand }
}

const per = (byCommand: Record<string, number>, n: number) =>
  Object.fromEntries(Object.entries(byCommand).map(([k, v]) => [k, v / n]))

async function opCost (admin: Redis, op: (i: number) => Promise<unknown>): Promise<OpCost> {
  const latencies: number[] = []
  for (let i = 0; i < ONE_AT_A_TIME; i++) {
    const t = performance.now()
    await op(i)
    latencies.push((performance.now() - t) * 1000)
  }
  latencies.sort((a, b) => a - b)
  const from = await sampleCpu(admin, [])
  const t = performance.now()
  await pool(MANY, IN_FLIGHT, async (i) => { await op(ONE_AT_A_TIME + i) })
  const wallUs = (performance.now() - t) * 1000 / MANY
  const use = cpuBetween(from, await sampleCpu(admin, []))
  const { total, byCommand } = calls(use)
  return {
    p50Us: percentile(latencies, 0.5),
    p99Us: percentile(latencies, 0.99),
    wallUs,
    commands: total / MANY,
    byCommand: per(byCommand, MANY),
    redisCpuUs: use.redisMs * 1000 / MANY
  }
}

async function expiryCost (store: BenchStore, admin: Redis, url: string, port: number, pending: number, dir: string): Promise<ExpiryCost> {
  const tag = `growth-${pending}`
  const recordFile = join(dir, `${tag}.jsonl`)
  writeFileSync(recordFile, '')
  let workers: NodeChild[] = []
  try {
    workers = await ours.startWorkers({ redisUrl: url, port, recordFile, logFile: () => join(dir, `${tag}.worker.log`), workerEnv: {} }, 1)
    const idleFrom = await sampleCpu(admin, workers)
    await sleep(IDLE_MS)
    const idleUse = cpuBetween(idleFrom, await sampleCpu(admin, workers))
    const idle = { commands: calls(idleUse).total / (IDLE_MS / 1000), redisCpuMs: idleUse.redisMs / (IDLE_MS / 1000), workerCpuMs: idleUse.workersMs / (IDLE_MS / 1000) }

    const due = Math.round(RATE * SECONDS)
    const t0 = Date.now() + MIN_LEAD_MS + 1000 + Math.ceil(due * 0.4)
    const deadlines = new Map<string, number>()
    let minLeadMs = Infinity
    await pool(due, IN_FLIGHT, async (i) => {
      const id = holdId('due-', i)
      const ttlMs = Math.max(1, Math.round(t0 + i * 1000 / RATE - Date.now()))
      minLeadMs = Math.min(minLeadMs, ttlMs)
      const view = await createHold(store.ctx, { id, ttlMs })
      deadlines.set(id, view.expiresAt)
    })
    if (minLeadMs < MIN_LEAD_MS) console.log(`  note: a due hold was created only ${minLeadMs} ms before its deadline`)
    const lastDeadline = Math.max(...deadlines.values())
    await sleep(Math.max(0, t0 - 100 - Date.now()))
    const from = await sampleCpu(admin, workers)
    const windowFrom = Date.now()
    // Until every due hold ran, or 15 s after the last deadline.
    while (Date.now() < lastDeadline + 15_000) {
      await sleep(100)
      if (Date.now() < lastDeadline) continue
      const ran = new Set(readRecords(recordFile).map((r) => r.id))
      if ([...deadlines.keys()].every((id) => ran.has(id))) break
    }
    const use = cpuBetween(from, await sampleCpu(admin, workers))
    const windowMs = Date.now() - windowFrom
    const delivery = summarize(readRecords(recordFile), deadlines, t0)
    const n = Math.max(1, delivery.delivered)
    const { total, byCommand } = calls(use)
    return {
      due,
      delivery,
      commands: total / n,
      byCommand: per(byCommand, n),
      redisCpuUs: use.redisMs * 1000 / n,
      workerCpuUs: use.workersMs * 1000 / n,
      windowMs,
      idle
    }
  } finally {
    await Promise.all(workers.map(async (w) => await w.stop(5000)))
  }
}

async function measure (pending: number, dir: string): Promise<Cell> {
  const redis = await startRedisServer()
  const admin = adminClient(redis.port, 'bench:growth-admin')
  const cell: Cell = { pending, backgroundMs: 0 }
  let store: BenchStore | undefined
  try {
    // In the layout a worker started on this Redis follows (KEY_FORMAT for a fresh one).
    store = await openRecordedStore(redis.url, 'bench:growth')
    const s = store
    await warmUp(s, BACKGROUND_TTL_MS)
    const t = Date.now()
    await createHolds(s, Array.from({ length: pending }, (_v, i) => holdId('bg-', i)),
      (i) => BACKGROUND_TTL_MS + Math.floor(i * 3_600_000 / pending))
    cell.backgroundMs = Date.now() - t
    console.log(`${fmt(pending)} pending: background created in ${(cell.backgroundMs / 1000).toFixed(1)} s`)
    cell.create = await opCost(admin, async (i) => await createHold(s.ctx, { id: holdId('new-', i), ttlMs: BACKGROUND_TTL_MS }))
    console.log(`  create: ${fmt(cell.create.p50Us)} µs one at a time, ${fmt(cell.create.wallUs)} µs at ${IN_FLIGHT} in flight, ` +
      `${fmt(cell.create.commands, 1)} commands, ${fmt(cell.create.redisCpuUs)} µs Redis CPU`)
    // Background holds spread over the whole index, in an order unrelated to their shard.
    const stride = 7919
    cell.read = await opCost(admin, async (i) => await getCheckout(s.ctx, holdId('bg-', (i * stride) % pending)))
    console.log(`  read: ${fmt(cell.read.p50Us)} µs one at a time, ${fmt(cell.read.wallUs)} µs at ${IN_FLIGHT} in flight, ` +
      `${fmt(cell.read.commands, 1)} commands, ${fmt(cell.read.redisCpuUs)} µs Redis CPU`)
    const e = await expiryCost(s, admin, redis.url, redis.port, pending, dir)
    cell.expiry = e
    const l = e.delivery.lateness
    console.log(`  expiry: ${fmt(e.delivery.delivered)}/${fmt(e.due)} delivered, ${fmt(e.delivery.duplicated)} duplicated, lateness p50 ${fmt(l?.p50)} p99 ${fmt(l?.p99)} max ${fmt(l?.max)} ms, ` +
      `${fmt(e.commands, 1)} commands, ${fmt(e.redisCpuUs)} µs Redis CPU, ${fmt(e.workerCpuUs)} µs worker CPU per expiry`)
  } catch (err) {
    cell.error = err instanceof Error ? err.message : String(err)
    console.log(`  error: ${cell.error}`)
  } finally {
    await store?.close().catch(() => {})
    admin.disconnect()
    await redis.destroy()
  }
  return cell
}

const commandList = (byCommand: Record<string, number>) =>
  Object.entries(byCommand).sort((a, b) => b[1] - a[1]).filter(([, v]) => v >= 0.05).map(([k, v]) => `${k} ${fmt(v, 1)}`).join(', ')

function section (cells: Cell[], command: string, date: string): string {
  const rows = (head: string, pick: (c: Cell) => string | undefined) => [head, ...cells.map((c) => pick(c) ?? `| ${fmt(c.pending)} | error: ${(c.error ?? 'not measured').replace(/\|/g, '/').slice(0, 80)} |`)]
  const op = (o: OpCost | undefined, pending: number) => o
    ? `| ${fmt(pending)} | ${fmt(o.p50Us)} / ${fmt(o.p99Us)} | ${fmt(o.wallUs)} | ${fmt(o.commands, 1)} | ${fmt(o.redisCpuUs)} |`
    : undefined
  const opHead = `| Pending holds | Client µs, one at a time (p50 / p99) | Client µs each, ${IN_FLIGHT} in flight | Redis commands each | Redis CPU µs each |\n| ---: | ---: | ---: | ---: | ---: |`
  const largest = cells.filter((c) => c.expiry).at(-1)
  const target = cells.find((c) => c.pending === TARGET.pending && c.expiry)
  const p99 = target?.expiry?.delivery.lateness?.p99
  const targetLine = RATE === TARGET.rate && target && p99 !== undefined
    ? `Target: lateness p99 ≤ ${TARGET.p99} ms at ${fmt(TARGET.pending)} pending and ${fmt(TARGET.rate)} due/s: ${p99 <= TARGET.p99 ? 'met' : '**missed**'} (${fmt(p99)} ms).`
    : `Target: lateness p99 ≤ ${TARGET.p99} ms at ${fmt(TARGET.pending)} pending and ${fmt(TARGET.rate)} due/s: not measured in this run.`
  return [
    ...runHeader({ command, date, machine: machineLine(), code: codeVersion() }),
    '',
    `Each row is a fresh redis-server holding that many pending holds (made with \`createHold\`, ids of 25 characters, due 2 to 3 h later). Create: \`createHold\` of new ids, ${fmt(ONE_AT_A_TIME)} one at a time, then ${fmt(MANY)} with ${IN_FLIGHT} in flight; read: \`getCheckout\` of background holds, the same. Redis commands count those run inside scripts (\`INFO commandstats\`); Redis CPU is \`used_cpu_user + used_cpu_sys\` over the ${fmt(MANY)} calls.`,
    '',
    '**Create** (`createHold`)',
    '',
    ...rows(opHead, (c) => op(c.create, c.pending)),
    '',
    '**Read** (`getCheckout`)',
    '',
    ...rows(opHead, (c) => op(c.read, c.pending)),
    '',
    `**Expiry**: one worker process (\`workers/expiry-worker.ts\`, default settings, handler \`bench/handler.ts\`), ${fmt(RATE)} holds due per second for ${SECONDS} s on top of the pending ones; lateness is handler start minus the hold's deadline. Commands and CPU are everything Redis and the worker used from the first deadline until the last run was seen, divided by the runs.`,
    '',
    '| Pending holds | Ran / due | Duplicated | Lateness p50 / p99 / max (ms) | Redis commands per expiry | Redis CPU µs per expiry | Worker CPU µs per expiry | Idle worker: commands/s, Redis / worker CPU ms/s |',
    '| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...cells.map((c) => {
      const e = c.expiry
      if (!e) return `| ${fmt(c.pending)} | error: ${(c.error ?? 'not measured').replace(/\|/g, '/').slice(0, 80)} | | | | | | |`
      const l = e.delivery.lateness
      return `| ${fmt(c.pending)} | ${fmt(e.delivery.delivered)} / ${fmt(e.due)} | ${fmt(e.delivery.duplicated)} | ${fmt(l?.p50)} / ${fmt(l?.p99)} / ${fmt(l?.max)} | ` +
        `${fmt(e.commands, 1)} | ${fmt(e.redisCpuUs)} | ${fmt(e.workerCpuUs)} | ${fmt(e.idle.commands)}, ${fmt(e.idle.redisCpuMs, 1)} / ${fmt(e.idle.workerCpuMs, 1)} |`
    }),
    '',
    targetLine,
    ...(largest
      ? ['', `Commands per operation at ${fmt(largest.pending)} pending:`, '',
          `- create: ${commandList(largest.create?.byCommand ?? {})}`,
          `- read: ${commandList(largest.read?.byCommand ?? {})}`,
          `- expiry: ${commandList(largest.expiry?.byCommand ?? {})}`]
      : [])
  ].join('\n')
}

async function main (): Promise<void> {
  const stopGuard = guardRun('bench:growth', MAX_MINUTES * 60_000)
  const startedAt = new Date()
  const dir = join(root, 'bench', 'results', `growth-${startedAt.toISOString().replace(/[:.]/g, '-')}`)
  mkdirSync(dir, { recursive: true })
  console.log(`bench:growth: pending ${SIZES.map((s) => fmt(s)).join(', ')}; ${fmt(RATE)} due/s for ${SECONDS} s`)
  const cells: Cell[] = []
  for (const pending of SIZES) cells.push(await measure(pending, dir))
  const overrides = ['BENCH_GROWTH_SIZES', 'BENCH_GROWTH_RATE', 'BENCH_GROWTH_SECONDS', 'BENCH_MAX_MINUTES'].filter((v) => process.env[v]).map((v) => `${v}=${process.env[v]}`)
  const command = [...overrides, 'npm run bench:growth'].join(' ')
  const text = section(cells, command, startedAt.toISOString().slice(0, 10))
  console.log('\n' + text)
  writeFileSync(join(dir, 'summary.json'), JSON.stringify({ command, startedAt, cells }, null, 2))
  console.log(`\nraw results: ${dir}`)
  const full = SIZES.length === DEFAULT_SIZES.length && DEFAULT_SIZES.every((s) => SIZES.includes(s)) && RATE === TARGET.rate
  if (process.env.BENCH_DOCS === '1' || (process.env.BENCH_DOCS !== '0' && full)) {
    writeDoc(join(root, 'docs', 'benchmarks.md'), text, 'growth')
    console.log('updated docs/benchmarks.md')
  } else {
    console.log('docs/benchmarks.md left as it is (not the default sizes and rate; BENCH_DOCS=1 writes it anyway)')
  }
  stopGuard()
  process.exitCode = cells.some((c) => c.error !== undefined) ? 1 : 0
}

await main()
