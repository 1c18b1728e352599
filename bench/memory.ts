import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Redis } from 'ioredis'
import { loadConfig } from '../src/config.js'
import { endHold } from '../src/store/checkout-store.js'
import { root } from './children.js'
import { codeVersion } from './machine.js'
import {
  createHolds, envNumber, envSizes, fmt, guardRun, holdId, machineLine, openStore, payloadOfSize, pool, settledMemory, warmUp, type BenchStore
} from './memory-kit.js'
import { startRedisServer } from './redis-server.js'
import { runHeader, writeDoc } from './report.js'
import { adminClient } from './util.js'

/**
 * `npm run bench:memory`: Redis memory per pending hold, each measurement on
 * its own fresh redis-server with default settings. Holds are made with the
 * store's createHold (ids of 25 characters, default KEY_PREFIX and
 * KEY_SHARDS), without and with a 200-byte payload; the baseline is a plain
 * `SET <key> 1 PX <ttl>` per id. used_memory is read before and after, once
 * Redis has settled, with no client but the benchmark's idle admin
 * connection. At one size the bytes are also split by structure, by deleting
 * one structure at a time and reading what that freed.
 *
 *   BENCH_MEMORY_SIZES  comma list of hold counts (default 100000,1000000)
 *   BENCH_MAX_MINUTES   hard cap on the whole run (default 15)
 *   BENCH_DOCS          1: update docs/benchmarks.md, 0: do not; by default only a full run does
 */
const DEFAULT_SIZES = [100_000, 1_000_000]
const SIZES = envSizes('BENCH_MEMORY_SIZES', DEFAULT_SIZES)
const MAX_MINUTES = envNumber('BENCH_MAX_MINUTES', 15, 1, 120)
const BREAKDOWN_AT = SIZES.includes(100_000) ? 100_000 : Math.min(...SIZES)
const TARGET_BYTES = 300
/** Far beyond the run: nothing expires while it is measured. */
const TTL_MS = 6 * 3_600_000
const PAYLOAD = payloadOfSize()
const PAYLOAD_LABEL = `${JSON.stringify(PAYLOAD).length} B`
const { KEY_SHARDS } = loadConfig()

interface Measured {
  holds: number
  payload: boolean
  before: number
  after: number
  perHold: number
  createMs: number
}

interface Breakdown {
  /** Bytes per hold freed by deleting each structure, in this order. */
  timer: number
  deadline: number
  order: number
  /** What was not given back after all three were deleted. */
  leftOver: number
  /** MEMORY USAGE of the key (the deadline index: of every shard's index), per hold. */
  usage: { order: number, timer: number, deadline: number }
  encodings: { order: string, timer: string, deadlines: string }
  /** MEMORY STATS of db 0, per hold: the main key table and the expires table (entries and slots). */
  tables: { main: number, expires: number }
}

interface Ended {
  perHold: number
  encoding: string
}

interface Row {
  holds: number
  baseline: Measured
  ours: Measured[]
  breakdown: Map<boolean, Breakdown>
  ended: Map<boolean, Ended>
}

async function onFreshRedis<T> (fn: (url: string, admin: Redis) => Promise<T>): Promise<T> {
  const redis = await startRedisServer()
  const admin = adminClient(redis.port, 'bench:memory-admin')
  try {
    return await fn(redis.url, admin)
  } finally {
    admin.disconnect()
    await redis.destroy()
  }
}

const ids = (n: number) => Array.from({ length: n }, (_v, i) => holdId('ord-', i))

/** A plain `SET <the hold's timer key name> 1 PX <ttl>` per id: what one TTL key costs. */
async function baseline (n: number): Promise<Measured> {
  return await onFreshRedis(async (url, admin) => {
    const before = await settledMemory(admin)
    const store = openStore(url, 'bench:baseline')
    const list = ids(n)
    const t = Date.now()
    await pool(n, 1000, async (i) => { await store.redis.set(store.keys.order(list[i] as string).timer, '1', 'PX', TTL_MS) })
    const createMs = Date.now() - t
    await store.close()
    const after = await settledMemory(admin)
    return { holds: n, payload: false, before, after, perHold: (after - before) / n, createMs }
  })
}

/** Runs `commands` for every id on a connection of its own, closed before Redis settles. */
async function forEachId (url: string, list: string[], command: (store: BenchStore, id: string) => Promise<unknown>): Promise<void> {
  const store = openStore(url, 'bench:memory-step')
  try {
    await pool(list.length, 1000, async (i) => { await command(store, list[i] as string) })
  } finally {
    await store.close()
  }
}

async function memoryStats (admin: Redis): Promise<{ main: number, expires: number }> {
  const stats = await admin.call('MEMORY', 'STATS') as unknown[]
  const db = stats[stats.indexOf('db.0') + 1] as unknown[] | undefined
  const field = (name: string) => Number(db?.[db.indexOf(name) + 1])
  return { main: field('overhead.hashtable.main'), expires: field('overhead.hashtable.expires') }
}

async function memoryUsage (admin: Redis, keys: string[]): Promise<number> {
  let sum = 0
  for (const key of keys) sum += Number(await admin.call('MEMORY', 'USAGE', key, 'SAMPLES', '0'))
  return sum
}

/**
 * Our holds on a fresh Redis: used_memory per hold; with `then`, also the
 * split by structure or the cost of the same holds once ended.
 */
async function ours (n: number, payload: boolean, then?: 'breakdown' | 'ended'): Promise<{ m: Measured, breakdown?: Breakdown, ended?: Ended }> {
  return await onFreshRedis(async (url, admin) => {
    const warm = openStore(url, 'bench:warm-up')
    await warmUp(warm, TTL_MS)
    await warm.close()
    const before = await settledMemory(admin)
    const store = openStore(url, 'bench:producer')
    const { keys } = store
    const list = ids(n)
    const t = Date.now()
    await createHolds(store, list, () => TTL_MS, payload ? PAYLOAD : undefined)
    const createMs = Date.now() - t
    await store.close()
    const after = await settledMemory(admin)
    const m: Measured = { holds: n, payload, before, after, perHold: (after - before) / n, createMs }
    console.log(`  ours ${fmt(n)}${payload ? ' with payload' : ''}: ${fmt(m.perHold)} B per pending hold (created in ${(createMs / 1000).toFixed(1)} s)`)
    const first = keys.order(list[0] as string)
    const encoding = async (key: string) => String(await admin.object('ENCODING', key))

    if (then === 'ended') {
      await forEachId(url, list, async (s, id) => await endHold(s.ctx, id, 'completed'))
      const ended = await settledMemory(admin)
      const e = { perHold: (ended - before) / n, encoding: await encoding(first.order) }
      console.log(`  ours ${fmt(n)}${payload ? ' with payload' : ''}, completed and kept for retention: ${fmt(e.perHold)} B per ended hold`)
      return { m, ended: e }
    }
    if (then !== 'breakdown') return { m }

    const encodings = { order: await encoding(first.order), timer: await encoding(first.timer), deadlines: await encoding(first.deadlines) }
    const sample = list.slice(0, 1000)
    const shardIndexes = Array.from({ length: keys.shards }, (_v, s) => keys.shard(s).deadlines)
    const usage = {
      order: await memoryUsage(admin, sample.map((id) => keys.order(id).order)) / sample.length,
      timer: await memoryUsage(admin, sample.map((id) => keys.order(id).timer)) / sample.length,
      deadline: await memoryUsage(admin, shardIndexes) / n
    }
    const stats = await memoryStats(admin)
    await forEachId(url, list, async (s, id) => await s.redis.del(keys.order(id).timer))
    const noTimers = await settledMemory(admin)
    // The whole index of each shard: the warm-up holds' 16 entries go with it.
    for (const key of shardIndexes) await admin.del(key)
    const noIndex = await settledMemory(admin)
    await forEachId(url, list, async (s, id) => await s.redis.del(keys.order(id).order))
    const empty = await settledMemory(admin)
    const breakdown: Breakdown = {
      timer: (after - noTimers) / n,
      deadline: (noTimers - noIndex) / n,
      order: (noIndex - empty) / n,
      leftOver: (empty - before) / n,
      usage,
      encodings,
      tables: { main: stats.main / n, expires: stats.expires / n }
    }
    console.log(`  breakdown: timer ${fmt(breakdown.timer)}, deadline index ${fmt(breakdown.deadline)}, order hash ${fmt(breakdown.order)}, left over ${fmt(breakdown.leftOver)} B per hold`)
    return { m, breakdown }
  })
}

function section (rows: Row[], command: string, date: string): string {
  const lines = [
    ...runHeader({ command, date, machine: machineLine(), code: codeVersion() }),
    '',
    `Each figure is \`used_memory\` after minus before, divided by the number of holds, on a fresh redis-server (default settings and listpack limits); holds made with the store's \`createHold\` (ids of 25 characters, default \`KEY_PREFIX\` and \`KEY_SHARDS\`, 1,000 in flight), no payload or a JSON payload of ${PAYLOAD_LABEL}. The baseline is \`SET <the hold's timer key name> 1 PX <ttl>\` per id, in the same run.`,
    '',
    '| Pending holds | Payload | checkout-expiry (B per hold) | Plain `SET … PX` (B per key) | Ratio | Create time (s) |',
    '| ---: | --- | ---: | ---: | ---: | ---: |'
  ]
  for (const r of rows) {
    for (const o of r.ours) {
      lines.push(`| ${fmt(r.holds)} | ${o.payload ? PAYLOAD_LABEL : 'none'} | ${fmt(o.perHold)} | ${fmt(r.baseline.perHold)} | ${(o.perHold / r.baseline.perHold).toFixed(1)}× | ${(o.createMs / 1000).toFixed(1)} |`)
    }
  }
  const plain = rows.flatMap((r) => r.ours.filter((o) => !o.payload))
  lines.push('', `Target: ≤ ${TARGET_BYTES} B per pending hold without payload, everything the guarantee needs included: ` +
    plain.map((o) => `${fmt(o.holds)} holds ${o.perHold <= TARGET_BYTES ? 'met' : '**missed**'} (${fmt(o.perHold)} B)`).join(', ') + '.')

  const at = rows.find((r) => r.breakdown.size > 0)
  if (at) {
    const b = (p: boolean) => at.breakdown.get(p)
    const cell = (p: boolean, pick: (x: Breakdown) => string) => { const x = b(p); return x ? pick(x) : '–' }
    lines.push('', `Where the bytes go, at ${fmt(at.holds)} pending holds: what deleting each structure gave back (timer keys, then every shard's deadline index, then the order hashes), per hold. The main key table's slots stay until the last keys go, so they count in the order-hash line; \`MEMORY USAGE\` of the keys themselves beside it.`, '',
      '| Structure | Encoding (no payload / payload) | Freed, no payload (B per hold) | `MEMORY USAGE` | Freed, with payload | `MEMORY USAGE` |',
      '| --- | --- | ---: | ---: | ---: | ---: |',
      `| Order hash \`…order:<id>\` | ${cell(false, (x) => x.encodings.order)} / ${cell(true, (x) => x.encodings.order)} | ${cell(false, (x) => fmt(x.order))} | ${cell(false, (x) => fmt(x.usage.order))} | ${cell(true, (x) => fmt(x.order))} | ${cell(true, (x) => fmt(x.usage.order))} |`,
      `| Timer key \`…timer:<id>\` (with its expires entry) | ${cell(false, (x) => x.encodings.timer)} | ${cell(false, (x) => fmt(x.timer))} | ${cell(false, (x) => fmt(x.usage.timer))} | ${cell(true, (x) => fmt(x.timer))} | ${cell(true, (x) => fmt(x.usage.timer))} |`,
      `| Deadline-index entry (\`…deadlines\`, ${fmt(at.holds / KEY_SHARDS)} per shard) | ${cell(false, (x) => x.encodings.deadlines)} | ${cell(false, (x) => fmt(x.deadline))} | ${cell(false, (x) => fmt(x.usage.deadline))} | ${cell(true, (x) => fmt(x.deadline))} | ${cell(true, (x) => fmt(x.usage.deadline))} |`,
      `| Not given back after all three | | ${cell(false, (x) => fmt(x.leftOver))} | | ${cell(true, (x) => fmt(x.leftOver))} | |`,
      `| Redis's key tables (\`MEMORY STATS\`, in the lines above): main / expires | | ${cell(false, (x) => `${fmt(x.tables.main)} / ${fmt(x.tables.expires)}`)} | | ${cell(true, (x) => `${fmt(x.tables.main)} / ${fmt(x.tables.expires)}`)} | |`)
    const ended = [false, true].map((p) => at.ended.get(p)).filter((e): e is Ended => e !== undefined)
    if (ended.length > 0) {
      lines.push('', `Ended holds kept for retention (\`CHECKOUT_RESULT_RETENTION_MS\`): the same ${fmt(at.holds)} holds, each completed with the store's \`endHold\` (timer and index entry deleted, the order hash kept with a TTL): ` +
        [false, true].flatMap((p) => { const e = at.ended.get(p); return e ? [`${p ? `with a ${PAYLOAD_LABEL} payload` : 'no payload'} ${fmt(e.perHold)} B per ended hold (order hash ${e.encoding})`] : [] }).join('; ') + '.')
    }
  }
  return lines.join('\n')
}

async function main (): Promise<void> {
  const stopGuard = guardRun('bench:memory', MAX_MINUTES * 60_000)
  const startedAt = new Date()
  console.log(`bench:memory: sizes ${SIZES.map((s) => fmt(s)).join(', ')}; breakdown at ${fmt(BREAKDOWN_AT)}; payload ${PAYLOAD_LABEL}`)
  const rows: Row[] = []
  for (const n of SIZES) {
    const row: Row = { holds: n, baseline: await baseline(n), ours: [], breakdown: new Map(), ended: new Map() }
    console.log(`${fmt(n)} holds: plain SET ${fmt(row.baseline.perHold)} B per key`)
    for (const payload of [false, true]) {
      const main = await ours(n, payload, n === BREAKDOWN_AT ? 'breakdown' : undefined)
      row.ours.push(main.m)
      if (main.breakdown) row.breakdown.set(payload, main.breakdown)
      if (n === BREAKDOWN_AT) {
        const ended = await ours(n, payload, 'ended')
        if (ended.ended) row.ended.set(payload, ended.ended)
      }
    }
    rows.push(row)
  }
  const overrides = ['BENCH_MEMORY_SIZES', 'BENCH_MAX_MINUTES'].filter((v) => process.env[v]).map((v) => `${v}=${process.env[v]}`)
  const command = [...overrides, 'npm run bench:memory'].join(' ')
  const text = section(rows, command, startedAt.toISOString().slice(0, 10))
  console.log('\n' + text)
  const dir = join(root, 'bench', 'results')
  mkdirSync(dir, { recursive: true })
  const file = join(dir, `memory-${startedAt.toISOString().replace(/[:.]/g, '-')}.json`)
  writeFileSync(file, JSON.stringify(rows.map((r) => ({ ...r, breakdown: Object.fromEntries(r.breakdown), ended: Object.fromEntries(r.ended) })), null, 2))
  console.log(`\nraw results: ${file}`)
  const full = SIZES.length === DEFAULT_SIZES.length && DEFAULT_SIZES.every((s) => SIZES.includes(s))
  if (process.env.BENCH_DOCS === '1' || (process.env.BENCH_DOCS !== '0' && full)) {
    writeDoc(join(root, 'docs', 'benchmarks.md'), text, 'memory')
    console.log('updated docs/benchmarks.md')
  } else {
    console.log('docs/benchmarks.md left as it is (not the default sizes; BENCH_DOCS=1 writes it anyway)')
  }
  stopGuard()
}

await main()
