import { mkdirSync, writeFileSync } from 'node:fs'
import { loadavg } from 'node:os'
import { join } from 'node:path'
import type { NodeChild } from './children.js'
import { cpuBetween, sampleCpu, type CpuUse } from './cpu.js'
import { injectFault } from './faults.js'
import type { BenchOptions } from './options.js'
import { rebalanceStats, stallStats, type Rebalance, type Stall } from './ownership-report.js'
import { readRecords } from './record.js'
import { startRedisServer, type BenchRedis } from './redis-server.js'
import { BACKGROUND_TTL_MS, type Scenario } from './scenarios.js'
import { burstRate, summarize, takeoverAfterKill, type BurstRate, type Delivery, type Takeover } from './stats.js'
import type { BenchSystem, Cell, Hold, Producer } from './systems/types.js'
import { adminClient, sleep } from './util.js'
import type { Redis } from 'ioredis'

/**
 * One system × one scenario against its own fresh redis-server: start the
 * workers, schedule the holds, inject the fault, collect the handler calls
 * until every hold has run (plus a settle time for duplicates) or the grace
 * period after the last deadline is over, then tear everything down.
 */
export interface CellResult {
  system: BenchSystem['name']
  scenario: Scenario['key']
  delivery?: Delivery
  /** Scenario F: how the killed worker's runs were taken over. */
  takeover?: Takeover
  /** Throughput scenarios: how fast the handlers ran through the burst. */
  burst?: BurstRate
  /** Scenario K: the joiner's first run, each worker's runs, lateness around the join and the SIGTERM. */
  rebalance?: Rebalance
  /** Scenario L: the stalled worker's runs, lateness of what fell due while it was stopped. */
  stall?: Stall
  hz?: number
  /** 1-minute load average when the run began: other work on the machine shows here. */
  loadBefore: number
  timings: Record<string, number>
  /** CPU time (ms) the worker processes (summed) and redis-server used from the end of scheduling to the end of collection. */
  cpu?: CpuUse
  fault: Record<string, number>
  notes: string[]
  /** For a sample of lost ids, what the system itself says about them at the end. */
  lostState?: Record<string, string>
  error?: string
}

/** Holds must be created at least this long before they are due. */
const MIN_LEAD_MS = 2000
/**
 * Creation time planned per measured hold (allows 4,000 holds/s), on top of
 * MIN_LEAD_MS; where the background holds showed creation to be slower, 1.5
 * times their time per hold, so that even the 40,000 holds of a burst are all
 * created before the first is due.
 */
const PLANNED_CREATE_MS_PER_HOLD = 0.25
/** Buffered recording in the throughput scenarios (see bench/record.ts). */
const RECORD_BUFFER_MS = 25

export async function runCell (system: BenchSystem, scenario: Scenario, opts: BenchOptions, resultsDir: string): Promise<CellResult> {
  const tag = `${scenario.key}-${system.name}`
  const result: CellResult = { system: system.name, scenario: scenario.key, loadBefore: loadavg()[0] ?? 0, timings: {}, fault: {}, notes: [] }
  const began = Date.now()
  let redis: BenchRedis | undefined
  let admin: Redis | undefined
  let producer: Producer | undefined
  const workers: NodeChild[] = []
  try {
    redis = await startRedisServer({ appendonly: scenario.appendonly })
    admin = adminClient(redis.port)
    result.hz = Number((await admin.config('GET', 'hz') as unknown as string[])[1])
    let started = 0
    const cell: Cell = {
      redisUrl: redis.url,
      port: redis.port,
      recordFile: join(resultsDir, `${tag}.jsonl`),
      logFile: () => join(resultsDir, `${tag}.worker${started++}.log`),
      workerEnv: {
        ...(scenario.handlerMs ? { BENCH_HANDLER_MS: String(scenario.handlerMs) } : {}),
        ...(scenario.burst ? { BENCH_RECORD_BUFFER_MS: String(RECORD_BUFFER_MS) } : {})
      }
    }
    // Only checkout-expiry's workers are profiled.
    if (opts.cpuProf && system.name === 'ours') {
      cell.profileDir = join(resultsDir, 'prof', tag)
      mkdirSync(cell.profileDir, { recursive: true })
    }
    writeFileSync(cell.recordFile, '')
    producer = await system.producer(cell)
    if (scenario.fault.kind !== 'workers-late') workers.push(...await system.startWorkers(cell, scenario.workers))

    let msPerHold = PLANNED_CREATE_MS_PER_HOLD
    if (scenario.background > 0) {
      const t = Date.now()
      const from = t + BACKGROUND_TTL_MS
      const background: Hold[] = Array.from({ length: scenario.background }, (_v, i) => ({
        id: `bg-${i}`, deadline: from + Math.floor(i * 60_000 / scenario.background)
      }))
      await producer.create(background)
      result.timings.backgroundCreateMs = Date.now() - t
      if (scenario.background >= 1000) msPerHold = Math.max(msPerHold, 1.5 * result.timings.backgroundCreateMs / scenario.background)
    }

    const t0 = Date.now() + MIN_LEAD_MS + 500 + Math.ceil(scenario.holds * msPerHold)
    const step = scenario.windowMs / scenario.holds
    const holds: Hold[] = Array.from({ length: scenario.holds }, (_v, i) => ({
      id: `${scenario.key}-${i}`, deadline: Math.round(t0 + i * step)
    }))
    const lastDeadline = (holds[holds.length - 1] as Hold).deadline
    const createStart = Date.now()
    const created = await producer.create(holds)
    const createEnd = Date.now()
    result.timings.createMs = createEnd - createStart
    result.timings.minLeadMs = created.minLeadMs
    result.timings.createdBeforeFirstDeadlineMs = t0 - createEnd
    if (created.minLeadMs < MIN_LEAD_MS) result.notes.push(`a hold was created only ${created.minLeadMs} ms before its deadline`)
    if (createEnd > t0) result.notes.push(`creating the holds ended ${createEnd - t0} ms after the first deadline`)

    const cpuFrom = await sampleCpu(admin, workers)
    const collectFrom = Date.now()
    const fault = injectFault(system, scenario, { t0, lastDeadline, redis, admin, cell, workers, record: result.fault })
    let faultDone: number | undefined
    void fault.then(() => { faultDone = Date.now() }, () => { faultDone = Date.now() })

    // Collect until every hold ran and settleMs passed, or the grace period ended.
    const graceMs = scenario.graceMs ?? opts.graceMs
    const hardCap = lastDeadline + 60_000 + graceMs
    let allSince: number | undefined
    let collectEnd = Date.now()
    while (true) {
      await sleep(250)
      collectEnd = Date.now()
      const graceFrom = Math.max(lastDeadline, faultDone ?? Infinity)
      if (collectEnd > graceFrom + graceMs || collectEnd > hardCap) break
      if (faultDone === undefined || collectEnd < lastDeadline) continue
      const ran = new Set(readRecords(cell.recordFile).map((r) => r.id))
      const all = holds.every((h) => ran.has(h.id))
      if (!all) allSince = undefined
      else if (allSince === undefined) allSince = collectEnd
      else if (collectEnd - allSince >= opts.settleMs) break
    }
    await fault
    result.timings.collectAfterLastDeadlineMs = collectEnd - lastDeadline

    result.cpu = cpuBetween(cpuFrom, await sampleCpu(admin, workers))
    result.timings.collectMs = collectEnd - collectFrom
    // A worker writes its CPU profile as it exits: give it time to.
    await Promise.all(workers.map(async (w) => await w.stop(opts.cpuProf ? 20_000 : 5000)))
    const records = readRecords(cell.recordFile).filter((r) => r.now <= collectEnd)
    result.delivery = summarize(records, created.deadlines, t0)
    if (scenario.burst) result.burst = burstRate(records, created.deadlines)
    if (result.fault.killedAt !== undefined) result.takeover = takeoverAfterKill(records, created.deadlines, result.fault.killedAt)
    if (scenario.fault.kind === 'rebalance') {
      const f = result.fault
      result.rebalance = rebalanceStats(records, created.deadlines, f)
      if (result.rebalance.joinerFirstRunMs === undefined) result.notes.push('the worker that joined ran no handler')
      if (f.joinerSubscribedMs === undefined && system.name === 'ours') result.notes.push('the worker that joined was not seen subscribed within 20 s')
      if (f.leaverSigkilled) result.notes.push('the worker stopped with SIGTERM had not exited after 15 s and was SIGKILLed')
      else if (f.leaverExitCode !== 0) result.notes.push(`the worker stopped with SIGTERM exited with code ${f.leaverExitCode}`)
    }
    if (scenario.fault.kind === 'worker-stall') {
      const f = result.fault
      result.stall = stallStats(records, created.deadlines, f)
      if (f.reaped) result.notes.push('the stalled worker was reaped: the other worker took its shards over')
      if ((f.stoppedMs ?? 0) > scenario.fault.forMs + 100) result.notes.push(`the worker stayed stopped ${f.stoppedMs} ms (${scenario.fault.forMs} planned)`)
    }
    if (result.delivery.lost > 0) result.lostState = await producer.describe(result.delivery.lostSample).catch((err: unknown) => ({ error: String(err) }))
  } catch (err) {
    result.error = err instanceof Error ? err.message : String(err)
  } finally {
    await Promise.all(workers.map(async (w) => await w.stop(2000).catch(() => {})))
    await producer?.close().catch(() => {})
    admin?.disconnect()
    await redis?.destroy()
    result.timings.totalMs = Date.now() - began
  }
  return result
}
