import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Redis } from 'ioredis'
import { loadConfig } from '../src/config.js'
import type { KeyFormat } from '../src/keys.js'
import { closeRedis } from '../src/redis/connection.js'
import { createHold } from '../src/store/checkout-store.js'
import { createStoreContext, type StoreContext } from '../src/store/context.js'
import { openKeyspace } from '../src/store/layout.js'
import { countPendingHolds } from '../src/store/stats.js'
import { killAll, root, type NodeChild } from './children.js'
import { cpuBetween, sampleCpu, type CpuUse } from './cpu.js'
import { codeVersion } from './machine.js'
import { benchRedis, envNumber, fmt, guardRun, holdId, machineLine, pool } from './memory-kit.js'
import { readRecords } from './record.js'
import { startRedisServer } from './redis-server.js'
import { runHeader, writeDoc } from './report.js'
import { summarize, type Delivery } from './stats.js'
import { bullmq } from './systems/bullmq.js'
import { startBullmqFleet, startExpiryFleet } from './fleet-workers.js'
import type { Cell as SystemCell, Hold } from './systems/types.js'
import { adminClient, sleep } from './util.js'

/**
 * `npm run bench:fleet`: what a fleet of expiry worker processes costs Redis,
 * in commands, from `INFO commandstats` deltas on a fresh redis-server per
 * fleet (commands run inside scripts count under their own names; the
 * benchmark's own INFO is left out, and it sends nothing else while it
 * measures: its store connection and BullMQ queue are closed by then).
 *
 * 1. Idle: N real worker processes (workers/expiry-worker.ts, handler
 *    bench/handler.ts) with nothing pending, KEY_SHARDS 16 and 64, N = 1
 *    and 8 (and 3, needed below); after they have been up 3 s, commands/s
 *    and script calls/s over BENCH_IDLE_S, for the fleet and per worker.
 *    Baseline: idle BullMQ worker processes (bench/workers/bullmq-worker.ts).
 * 2. Per expiry: the same fleets (KEY_SHARDS 16, N = 1, 3, 8) right after
 *    their idle window: BENCH_FLEET_RATE holds due per second for
 *    BENCH_FLEET_SECONDS, all created before the first deadline (createHold;
 *    the first due at least 2 s after creation ends), measured from the first
 *    deadline to the last + 2 s (longer if not every handler had run by
 *    then), the fleet's idle rate over that time subtracted, divided by the
 *    expiries handled (the handlers' records; the store is asked afterwards
 *    whether any hold is still pending). Baseline: BullMQ delayed jobs at the
 *    same rate, 1 and 3 workers.
 *
 *   BENCH_IDLE_S         idle window (default 10)
 *   BENCH_FLEET_RATE     expiries per second (default 1000)
 *   BENCH_FLEET_SECONDS  how long they come due (default 10)
 *   BENCH_FLEET_SYSTEMS  comma list of ours, bullmq (default both)
 *   BENCH_MAX_MINUTES    hard cap on the whole run (default 10)
 *   BENCH_WRITE_DOC      1: write the fleet-cost section of docs/benchmarks.md (default: docs untouched)
 */
const IDLE_S = envNumber('BENCH_IDLE_S', 10, 1, 300)
const RATE = envNumber('BENCH_FLEET_RATE', 1000, 1, 20_000)
const SECONDS = envNumber('BENCH_FLEET_SECONDS', 10, 1, 120)
const MAX_MINUTES = envNumber('BENCH_MAX_MINUTES', 10, 1, 120)
const SYSTEMS = (process.env.BENCH_FLEET_SYSTEMS ?? 'ours,bullmq').split(',').map((s) => s.trim()).filter(Boolean)
for (const s of SYSTEMS) if (s !== 'ours' && s !== 'bullmq') throw new Error(`BENCH_FLEET_SYSTEMS: unknown "${s}"; expected some of ours,bullmq`)

/** How long the workers are up before the idle window opens. */
const UP_MS = 3000
/** The first hold is due at least this long after the last one was created. */
const MIN_LEAD_MS = 2000
/** The window runs this long past the last deadline. */
const TAIL_MS = 2000
/** When not every handler ran by the end of the window, it is extended by at most this much. */
const MAX_EXTEND_MS = 30_000
/** After the last handler run was seen in an extended window: time for its acknowledgement. */
const ACK_SETTLE_MS = 500
/** createHold calls in flight while the holds are made. */
const IN_FLIGHT = 200
/** Creation time planned per hold before the first cell has measured it. */
const PLANNED_CREATE_MS_PER_HOLD = 0.5

/** Commands that are script calls; INFO commandstats also counts the commands they run, under their own names. */
const SCRIPT_COMMANDS = new Set(['eval', 'evalsha', 'eval_ro', 'evalsha_ro', 'fcall', 'fcall_ro'])

type SystemName = 'ours' | 'bullmq'
const LABEL: Record<SystemName, string> = { ours: 'checkout-expiry', bullmq: 'BullMQ' }

interface Spec {
  system: SystemName
  workers: number
  /** checkout-expiry's KEY_SHARDS; none for BullMQ. */
  shards?: number
  /** Measure expiries after the idle window. */
  expiry: boolean
}

interface Count {
  commands: number
  scripts: number
  byCommand: Record<string, number>
}

interface Idle {
  seconds: number
  commandsPerS: number
  scriptsPerS: number
  byCommandPerS: Record<string, number>
  redisCpuMsPerS: number
  workerCpuMsPerS: number
}

interface Expiry {
  due: number
  delivery: Delivery
  /** Creation ended this long before the first deadline. */
  leadMs: number
  createMs: number
  windowMs: number
  /** The window went on past the last deadline + TAIL_MS, until every handler had run. */
  extendedMs: number
  gross: Count
  /** Commands and script calls per expiry, the fleet's idle rate over the window subtracted. */
  commandsPerExpiry: number
  scriptsPerExpiry: number
  grossCommandsPerExpiry: number
  byCommandPerExpiry: Record<string, number>
  redisCpuUsPerExpiry: number
  workerCpuUsPerExpiry: number
  /** checkout-expiry: holds still pending in the store after the run. */
  pendingAfter?: number
}

interface Result {
  spec: Spec
  idle?: Idle
  expiry?: Expiry
  notes: string[]
  error?: string
}

function count (use: CpuUse): Count {
  const byCommand: Record<string, number> = {}
  let commands = 0
  let scripts = 0
  for (const [name, c] of Object.entries(use.commands)) {
    if (name === 'info') continue
    byCommand[name] = c.calls
    commands += c.calls
    if (SCRIPT_COMMANDS.has(name)) scripts += c.calls
  }
  return { commands, scripts, byCommand }
}

const scale = (byCommand: Record<string, number>, by: number) =>
  Object.fromEntries(Object.entries(byCommand).map(([k, v]) => [k, v * by]))

/** A store context on the layout the workers recorded, with the same shard count. */
async function openStore (url: string, shards: number): Promise<{ ctx: StoreContext, close: () => Promise<void> }> {
  const config = loadConfig({ ...process.env, REDIS_URL: url, KEY_SHARDS: String(shards) })
  const redis = benchRedis(url, 'bench:fleet-producer')
  try {
    const keys = await openKeyspace(redis, config.KEY_PREFIX, shards, console, config.KEY_FORMAT as KeyFormat)
    return { ctx: createStoreContext(redis, keys, config.CHECKOUT_RESULT_RETENTION_MS), close: async () => await closeRedis(redis) }
  } catch (err) {
    await closeRedis(redis)
    throw err
  }
}

/** Creates the holds (deadlines planned from t0) and returns when each is due, as the system scheduled it. */
async function createAll (spec: Spec, cell: SystemCell, holds: Hold[]): Promise<Map<string, number>> {
  if (spec.system === 'bullmq') {
    const producer = await bullmq.producer(cell)
    try {
      return (await producer.create(holds)).deadlines
    } finally {
      await producer.close()
    }
  }
  const store = await openStore(cell.redisUrl, spec.shards ?? 16)
  try {
    const deadlines = new Map<string, number>()
    await pool(holds.length, IN_FLIGHT, async (i) => {
      const h = holds[i] as Hold
      const view = await createHold(store.ctx, { id: h.id, ttlMs: Math.max(1, Math.round(h.deadline - Date.now())) })
      deadlines.set(h.id, view.expiresAt)
    })
    return deadlines
  } finally {
    await store.close()
  }
}

/** Creation time planned per hold, per system: what earlier cells of that system took (1.5 times), at least the default. */
const msPerHold: Record<SystemName, number> = { ours: PLANNED_CREATE_MS_PER_HOLD, bullmq: PLANNED_CREATE_MS_PER_HOLD }

async function measureExpiry (spec: Spec, cell: SystemCell, admin: Redis, workers: NodeChild[], idle: Idle, notes: string[]): Promise<Expiry> {
  const due = Math.round(RATE * SECONDS)
  const createStart = Date.now()
  const t0 = createStart + MIN_LEAD_MS + 500 + Math.ceil(due * msPerHold[spec.system])
  const holds: Hold[] = Array.from({ length: due }, (_v, i) => ({ id: holdId('fleet-', i), deadline: Math.round(t0 + i * 1000 / RATE) }))
  const deadlines = await createAll(spec, cell, holds)
  const createEnd = Date.now()
  const createMs = createEnd - createStart
  // The next cells plan with what this one took (1.5 times, for a busier moment).
  msPerHold[spec.system] = Math.max(msPerHold[spec.system], 1.5 * createMs / due)
  const first = Math.min(...deadlines.values())
  const last = Math.max(...deadlines.values())
  const leadMs = first - createEnd
  if (leadMs < MIN_LEAD_MS) notes.push(`creation ended only ${leadMs} ms before the first deadline`)
  if (leadMs <= 0) throw new Error(`creating ${due} holds took ${createMs} ms and ended after the first deadline`)

  await sleep(Math.max(0, first - Date.now()))
  const from = await sampleCpu(admin, workers)
  const windowFrom = Date.now()
  await sleep(Math.max(0, last + TAIL_MS - Date.now()))
  // Not every handler ran yet: the window goes on (reading only the handlers' records) until they all have.
  const ids = [...deadlines.keys()]
  const allRan = () => {
    const ran = new Set(readRecords(cell.recordFile).map((r) => r.id))
    return ids.every((id) => ran.has(id))
  }
  let extendedMs = 0
  if (!allRan()) {
    const extendFrom = Date.now()
    while (Date.now() - extendFrom < MAX_EXTEND_MS && !allRan()) await sleep(100)
    await sleep(ACK_SETTLE_MS)
    extendedMs = Date.now() - extendFrom
    notes.push(`not every handler had run ${TAIL_MS} ms after the last deadline: window extended by ${(extendedMs / 1000).toFixed(1)} s`)
  }
  const to = await sampleCpu(admin, workers)
  const windowMs = Date.now() - windowFrom
  const use = cpuBetween(from, to)

  // After the window: every expiry handled?
  const delivery = summarize(readRecords(cell.recordFile), deadlines, first)
  if (delivery.lost > 0) notes.push(`${delivery.lost} of ${due} expiries not handled by the end of the window`)
  let pendingAfter: number | undefined
  if (spec.system === 'ours') {
    const store = await openStore(cell.redisUrl, spec.shards ?? 16)
    try {
      pendingAfter = await countPendingHolds(store.ctx)
      for (let i = 0; i < 20 && pendingAfter > 0; i++) {
        await sleep(250)
        pendingAfter = await countPendingHolds(store.ctx)
      }
      if (pendingAfter > 0) notes.push(`${pendingAfter} holds still pending in the store after the run`)
    } finally {
      await store.close()
    }
  }

  const gross = count(use)
  const n = Math.max(1, delivery.delivered)
  const s = windowMs / 1000
  return {
    due,
    delivery,
    leadMs,
    createMs,
    windowMs,
    extendedMs,
    gross,
    commandsPerExpiry: (gross.commands - idle.commandsPerS * s) / n,
    scriptsPerExpiry: (gross.scripts - idle.scriptsPerS * s) / n,
    grossCommandsPerExpiry: gross.commands / n,
    byCommandPerExpiry: Object.fromEntries(Object.entries(gross.byCommand).map(([k, v]) => [k, (v - (idle.byCommandPerS[k] ?? 0) * s) / n])),
    redisCpuUsPerExpiry: (use.redisMs - idle.redisCpuMsPerS * s) * 1000 / n,
    workerCpuUsPerExpiry: (use.workersMs - idle.workerCpuMsPerS * s) * 1000 / n,
    ...(pendingAfter === undefined ? {} : { pendingAfter })
  }
}

async function runFleet (spec: Spec, dir: string): Promise<Result> {
  const tag = `${spec.system}-${spec.workers}w${spec.shards === undefined ? '' : `-${spec.shards}s`}`
  const result: Result = { spec, notes: [] }
  const redis = await startRedisServer()
  const admin = adminClient(redis.port, 'bench:fleet-admin')
  let workers: NodeChild[] = []
  try {
    let started = 0
    const cell: SystemCell = {
      redisUrl: redis.url,
      port: redis.port,
      recordFile: join(dir, `${tag}.jsonl`),
      logFile: () => join(dir, `${tag}.worker${started++}.log`),
      workerEnv: spec.shards === undefined ? {} : { KEY_SHARDS: String(spec.shards) }
    }
    writeFileSync(cell.recordFile, '')
    workers = await (spec.system === 'ours' ? startExpiryFleet : startBullmqFleet)(cell, spec.workers)
    await sleep(UP_MS)
    const from = await sampleCpu(admin, workers)
    const idleFrom = Date.now()
    await sleep(IDLE_S * 1000)
    const to = await sampleCpu(admin, workers)
    const seconds = (Date.now() - idleFrom) / 1000
    const use = cpuBetween(from, to)
    const c = count(use)
    const idle: Idle = {
      seconds,
      commandsPerS: c.commands / seconds,
      scriptsPerS: c.scripts / seconds,
      byCommandPerS: scale(c.byCommand, 1 / seconds),
      redisCpuMsPerS: use.redisMs / seconds,
      workerCpuMsPerS: use.workersMs / seconds
    }
    result.idle = idle
    console.log(`  idle: ${fmt(idle.commandsPerS, 1)} commands/s (${fmt(idle.commandsPerS / spec.workers, 1)} per worker), ` +
      `${fmt(idle.scriptsPerS, 1)} script calls/s (${fmt(idle.scriptsPerS / spec.workers, 1)} per worker) over ${seconds.toFixed(1)} s`)
    if (spec.expiry) {
      const e = await measureExpiry(spec, cell, admin, workers, idle, result.notes)
      result.expiry = e
      const l = e.delivery.lateness
      console.log(`  expiry: ${fmt(e.delivery.delivered)}/${fmt(e.due)} handled, ${fmt(e.delivery.duplicated)} duplicated, lateness p50 ${fmt(l?.p50)} p99 ${fmt(l?.p99)} ms; ` +
        `${fmt(e.commandsPerExpiry, 2)} commands and ${fmt(e.scriptsPerExpiry, 3)} script calls per expiry, idle subtracted ` +
        `(${fmt(e.grossCommandsPerExpiry, 2)} gross, window ${(e.windowMs / 1000).toFixed(1)} s, created in ${(e.createMs / 1000).toFixed(1)} s, ${(e.leadMs / 1000).toFixed(1)} s before the first deadline)`)
    }
  } catch (err) {
    result.error = err instanceof Error ? err.message : String(err)
    console.log(`  error: ${result.error}`)
  } finally {
    await Promise.all(workers.map(async (w) => await w.stop(5000).catch(() => {})))
    admin.disconnect()
    await redis.destroy()
    // Whatever else this fleet started (workers of a start that timed out) goes with it.
    killAll()
  }
  for (const note of result.notes) console.log(`  note: ${note}`)
  return result
}

const name = (s: Spec) => `${LABEL[s.system]}${s.shards === undefined ? '' : `, KEY_SHARDS=${s.shards}`}`
const errorRow = (r: Result, cells: number) => `| ${name(r.spec)} | ${r.spec.workers} | error: ${(r.error ?? 'not measured').replace(/\|/g, '/').slice(0, 100)} |${' |'.repeat(cells)}`

function idleTable (results: Result[]): string {
  const rows = [
    '| System | Workers | Commands/s, fleet | Commands/s per worker | Script calls/s, fleet | Script calls/s per worker | Redis CPU ms/s | Worker CPU ms/s, fleet |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |'
  ]
  for (const r of results) {
    const i = r.idle
    if (!i) {
      rows.push(errorRow(r, 5))
      continue
    }
    const n = r.spec.workers
    rows.push(`| ${name(r.spec)} | ${n} | ${fmt(i.commandsPerS, 1)} | ${fmt(i.commandsPerS / n, 1)} | ${fmt(i.scriptsPerS, 1)} | ${fmt(i.scriptsPerS / n, 1)} | ` +
      `${fmt(i.redisCpuMsPerS, 1)} | ${fmt(i.workerCpuMsPerS, 1)} |`)
  }
  return rows.join('\n')
}

function expiryTable (results: Result[]): string {
  const rows = [
    '| System | Workers | Handled / due | Duplicated | Lateness p50 / p99 (ms) | Window (s) | Idle commands/s subtracted | Commands per expiry | × 1 worker | Script calls per expiry | × 1 worker | Gross commands per expiry | Redis CPU µs per expiry |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |'
  ]
  for (const r of results.filter((x) => x.spec.expiry)) {
    const e = r.expiry
    if (!e || !r.idle) {
      rows.push(errorRow(r, 10))
      continue
    }
    const one = results.find((x) => x.spec.system === r.spec.system && x.spec.shards === r.spec.shards && x.spec.workers === 1)?.expiry
    const ratio = (v: number, base: number | undefined) => (base !== undefined && base > 0 ? `${fmt(v / base, 2)}×` : '–')
    const l = e.delivery.lateness
    rows.push(`| ${name(r.spec)} | ${r.spec.workers} | ${fmt(e.delivery.delivered)} / ${fmt(e.due)} | ${fmt(e.delivery.duplicated)} | ${fmt(l?.p50)} / ${fmt(l?.p99)} | ` +
      `${fmt(e.windowMs / 1000, 1)} | ${fmt(r.idle.commandsPerS, 1)} | ${fmt(e.commandsPerExpiry, 2)} | ${ratio(e.commandsPerExpiry, one?.commandsPerExpiry)} | ` +
      `${fmt(e.scriptsPerExpiry, 3)} | ${ratio(e.scriptsPerExpiry, one?.scriptsPerExpiry)} | ${fmt(e.grossCommandsPerExpiry, 2)} | ${fmt(e.redisCpuUsPerExpiry)} |`)
  }
  return rows.join('\n')
}

const commandList = (byCommand: Record<string, number>, digits: number) =>
  Object.entries(byCommand).sort((a, b) => b[1] - a[1]).filter(([, v]) => v >= 0.5 * 10 ** -digits).map(([k, v]) => `${k} ${fmt(v, digits)}`).join(', ')

function section (results: Result[], command: string, date: string): string {
  const breakdown = results.flatMap((r) => [
    ...r.idle ? [`- ${name(r.spec)}, ${r.spec.workers} idle: ${commandList(r.idle.byCommandPerS, 1)} per second`] : [],
    ...r.expiry ? [`- ${name(r.spec)}, ${r.spec.workers} per expiry (idle subtracted): ${commandList(r.expiry.byCommandPerExpiry, 2)}`] : []
  ])
  const notes = results.flatMap((r) => [...r.notes, ...r.error === undefined ? [] : [`error: ${r.error}`]].map((n) => `- ${name(r.spec)}, ${r.spec.workers} workers: ${n}`))
  return [
    ...runHeader({ command, date, machine: machineLine(), code: codeVersion() }),
    '',
    `Each row is a fresh redis-server and a fleet of real worker processes (checkout-expiry: \`workers/expiry-worker.ts\`, default settings but KEY_SHARDS, handler \`bench/handler.ts\`; BullMQ: \`bench/workers/bullmq-worker.ts\`, concurrency 50). Commands are \`INFO commandstats\` deltas: every command Redis counted, those run inside scripts included; script calls are EVAL, EVALSHA, FCALL and their _RO forms. The benchmark sends nothing but INFO during a window, and INFO is left out.`,
    '',
    `**Idle**: nothing pending; measured over ${IDLE_S} s once the workers have been up ${UP_MS / 1000} s.`,
    '',
    idleTable(results),
    '',
    `**Per expiry**: ${fmt(RATE)} holds due per second for ${SECONDS} s (checkout-expiry: \`createHold\`; BullMQ: delayed jobs, \`addBulk\`), all created before the first deadline, right after the fleet's idle window above. The window runs from the first deadline to the last + ${TAIL_MS / 1000} s (longer only if a handler had not run by then, see the notes); the fleet's idle rate over the window is subtracted and the rest divided by the expiries handled. "× 1 worker": the same figure over the 1-worker fleet's. The subtraction assumes the fleet's background traffic (heartbeats, polls) goes on at its idle rate during the window; workers short of CPU (high lateness) send it less often, and then the net figure errs low; the gross column (nothing subtracted) bounds it from above. Both also depend on how late the workers run: a worker that falls behind claims and acknowledges larger batches, with fewer script calls per expiry.`,
    '',
    expiryTable(results),
    '',
    'Commands by name:',
    '',
    ...breakdown,
    ...(notes.length > 0 ? ['', 'Notes from the run:', '', ...notes] : []),
    '',
    'The machine is shared and has 2 cores: a fleet of 8 workers competes with Redis and the benchmark for CPU, so idle rates there can be below the configured timers\' rates; figures move by a few percent from run to run.'
  ].join('\n')
}

/** Replaces the fleet-cost section of the doc, adding it at the end the first time. */
function writeFleetDoc (text: string): void {
  const path = join(root, 'docs', 'benchmarks.md')
  const start = '<!-- bench:fleet-cost:start -->'
  const current = existsSync(path) ? readFileSync(path, 'utf8') : '# Benchmarks\n'
  if (!current.includes(start)) {
    writeFileSync(path, current.replace(/\n*$/, '\n') +
      '\n## Fleet cost: Redis commands of the expiry workers\n\n`npm run bench:fleet` (bench/fleet-cost.ts): what idle worker processes cost Redis per second, and what each expiry costs, as the fleet grows.\n\n' +
      `${start}\n<!-- bench:fleet-cost:end -->\n`)
  }
  writeDoc(path, text, 'fleet-cost')
}

async function main (): Promise<void> {
  const stopGuard = guardRun('bench:fleet', MAX_MINUTES * 60_000)
  const startedAt = new Date()
  const dir = join(root, 'bench', 'results', `fleet-${startedAt.toISOString().replace(/[:.]/g, '-')}`)
  mkdirSync(dir, { recursive: true })
  const specs: Spec[] = [
    ...SYSTEMS.includes('ours')
      ? [
          { system: 'ours', workers: 1, shards: 16, expiry: true },
          { system: 'ours', workers: 3, shards: 16, expiry: true },
          { system: 'ours', workers: 8, shards: 16, expiry: true },
          { system: 'ours', workers: 1, shards: 64, expiry: false },
          { system: 'ours', workers: 8, shards: 64, expiry: false }
        ] satisfies Spec[]
      : [],
    ...SYSTEMS.includes('bullmq')
      ? [
          { system: 'bullmq', workers: 1, expiry: true },
          { system: 'bullmq', workers: 3, expiry: true },
          { system: 'bullmq', workers: 8, expiry: false }
        ] satisfies Spec[]
      : []
  ]
  console.log(`bench:fleet: idle ${IDLE_S} s; ${fmt(RATE)} expiries/s for ${SECONDS} s; ${specs.length} fleets`)
  const results: Result[] = []
  for (const spec of specs) {
    console.log(`${name(spec)}, ${spec.workers} worker${spec.workers === 1 ? '' : 's'}`)
    results.push(await runFleet(spec, dir).catch((err: unknown) => {
      killAll()
      const error = err instanceof Error ? err.message : String(err)
      console.log(`  error: ${error}`)
      return { spec, notes: [], error }
    }))
  }
  const overrides = ['BENCH_IDLE_S', 'BENCH_FLEET_RATE', 'BENCH_FLEET_SECONDS', 'BENCH_FLEET_SYSTEMS', 'BENCH_MAX_MINUTES'].filter((v) => process.env[v]).map((v) => `${v}=${process.env[v]}`)
  const command = [...overrides, 'npm run bench:fleet'].join(' ')
  const text = section(results, command, startedAt.toISOString().slice(0, 10))
  console.log('\n' + text)
  writeFileSync(join(dir, 'summary.json'), JSON.stringify({ command, startedAt, results }, null, 2))
  console.log(`\nraw results: ${dir}`)
  if (process.env.BENCH_WRITE_DOC === '1') {
    writeFleetDoc(text)
    console.log('updated the fleet-cost section of docs/benchmarks.md')
  }
  stopGuard()
  killAll()
  process.exitCode = results.some((r) => r.error !== undefined) ? 1 : 0
}

await main()
