import { join } from 'node:path'
import type { Redis } from 'ioredis'
import { loadConfig } from '../src/config.js'
import { createKeyspace, type Packing } from '../src/keys.js'
import { endHold } from '../src/store/checkout-store.js'
import { readPacking } from '../src/store/layout.js'
import { root } from './children.js'
import { codeVersion } from './machine.js'
import {
  createHolds, envNumber, envSizes, fmt, guardRun, holdId, machineLine, openStore, payloadOfSize, pool, settledMemory, warmUp
} from './memory-kit.js'
import { startRedisServer } from './redis-server.js'
import { runHeader, writeDoc } from './report.js'
import { adminClient } from './util.js'

/**
 * `npm run bench:memory` (second part): Redis memory per hold in key format
 * 3 (docs/keys.md), each measurement on its own fresh redis-server: pending
 * holds without and with a 200-byte payload, with `hash-max-listpack-value`
 * 512 (as in the shipped redis.conf) and 64 (stock Redis), ended holds, and
 * the plain `SET … PX` key as the baseline, in the same run.
 *
 *   BENCH_MEMORY_SIZES  comma list of hold counts (default 100000,1000000)
 *   BENCH_MAX_MINUTES   hard cap on the whole run (default 30)
 *   BENCH_DOCS          1: update docs/benchmarks.md, 0: do not; by default only a full run does
 */
const DEFAULT_SIZES = [100_000, 1_000_000]
const SIZES = envSizes('BENCH_MEMORY_SIZES', DEFAULT_SIZES)
const MAX_MINUTES = envNumber('BENCH_MAX_MINUTES', 30, 1, 120)
const TTL_MS = 6 * 3_600_000
/** Calls in flight: few enough that none waits past the connection's command timeout on a busy machine. */
const IN_FLIGHT = 100
const PAYLOAD = payloadOfSize()
const PAYLOAD_LABEL = `${JSON.stringify(PAYLOAD).length} B`
const { KEY_PREFIX, KEY_SHARDS } = loadConfig()
const SHIPPED = ['--hash-max-listpack-value', '512']
const TARGETS = { pending: 100, payloadShipped: 320, payloadStock: 430, ended: 200 }

type Case = 'baseline' | 'pending' | 'payload-shipped' | 'payload-stock' | 'ended' | 'ended-payload'
const CASES: Array<{ name: Case, label: string, args: string[], payload: boolean, end: boolean }> = [
  { name: 'baseline', label: 'plain `SET <key> 1 PX <ttl>` per id', args: [], payload: false, end: false },
  { name: 'pending', label: 'pending, no payload', args: SHIPPED, payload: false, end: false },
  { name: 'payload-shipped', label: `pending, ${PAYLOAD_LABEL} payload, \`hash-max-listpack-value 512\``, args: SHIPPED, payload: true, end: false },
  { name: 'payload-stock', label: `pending, ${PAYLOAD_LABEL} payload, stock limits (64)`, args: [], payload: true, end: false },
  { name: 'ended', label: 'ended (completed, kept for retention), no payload', args: SHIPPED, payload: false, end: true },
  { name: 'ended-payload', label: `ended, ${PAYLOAD_LABEL} payload, \`hash-max-listpack-value 512\``, args: SHIPPED, payload: true, end: true }
]

const ids = (n: number) => Array.from({ length: n }, (_v, i) => holdId('ord-', i))

async function measure (n: number, c: typeof CASES[number]): Promise<number> {
  const redis = await startRedisServer({ extraArgs: c.args })
  const admin: Redis = adminClient(redis.port, 'bench:memory-admin')
  try {
    const packing: Packing = await readPacking(admin, console)
    const keys = createKeyspace(KEY_PREFIX, KEY_SHARDS, 3, undefined, packing)
    const list = ids(n)
    if (c.name === 'baseline') {
      const before = await settledMemory(admin)
      const store = openStore(redis.url, 'bench:baseline', keys)
      await pool(n, 1000, async (i) => { await store.redis.set(`${keys.base(keys.shardOf(list[i] as string))}timer:${list[i] as string}`, '1', 'PX', TTL_MS) })
      await store.close()
      return (await settledMemory(admin) - before) / n
    }
    const warm = openStore(redis.url, 'bench:warm-up', keys)
    await warmUp(warm, TTL_MS)
    await warm.close()
    const before = await settledMemory(admin)
    const store = openStore(redis.url, 'bench:producer', keys)
    await createHolds(store, list, () => TTL_MS, c.payload ? PAYLOAD : undefined, IN_FLIGHT)
    if (c.end) await pool(n, IN_FLIGHT, async (i) => { await endHold(store.ctx, list[i] as string, 'completed') })
    await store.close()
    return (await settledMemory(admin) - before) / n
  } finally {
    admin.disconnect()
    await redis.destroy()
  }
}

function target (name: Case, bytes: number): string {
  const limit = name === 'pending' ? TARGETS.pending : name === 'payload-shipped' ? TARGETS.payloadShipped
    : name === 'payload-stock' ? TARGETS.payloadStock : name === 'ended' ? TARGETS.ended : undefined
  if (limit === undefined) return ''
  return `≤ ${limit}: ${bytes <= limit ? 'met' : '**missed**'}`
}

async function main (): Promise<void> {
  const stopGuard = guardRun('bench:memory (format 3)', MAX_MINUTES * 60_000)
  const startedAt = new Date()
  const results = new Map<string, number>()
  for (const n of SIZES) {
    for (const c of CASES) {
      const bytes = await measure(n, c)
      results.set(`${n}/${c.name}`, bytes)
      console.log(`  ${fmt(n)} ${c.name}: ${fmt(bytes)} B per hold`)
    }
  }
  const overrides = ['BENCH_MEMORY_SIZES', 'BENCH_MAX_MINUTES'].filter((v) => process.env[v]).map((v) => `${v}=${process.env[v]}`)
  const lines = [
    ...runHeader({ command: [...overrides, 'npm run bench:memory'].join(' '), date: startedAt.toISOString().slice(0, 10), machine: machineLine(), code: codeVersion() }),
    '',
    `Key format 3 (\`KEY_FORMAT=3\`): \`used_memory\` after minus before, divided by the number of holds, each case on a fresh redis-server; ids of 25 characters, default \`KEY_PREFIX\` and \`KEY_SHARDS\`, created with the store's \`createHold\`, ${IN_FLIGHT} in flight; payload a JSON object of ${PAYLOAD_LABEL}. The baseline is one plain key per id in the same run.`,
    '',
    `| Case | ${SIZES.map((n) => `${fmt(n)} holds (B per hold)`).join(' | ')} | Target (B) |`,
    `| --- | ${SIZES.map(() => '---:').join(' | ')} | --- |`
  ]
  for (const c of CASES) {
    const cells = SIZES.map((n) => fmt(results.get(`${n}/${c.name}`)))
    const worst = Math.max(...SIZES.map((n) => results.get(`${n}/${c.name}`) ?? 0))
    lines.push(`| ${c.label} | ${cells.join(' | ')} | ${target(c.name, worst)} |`)
  }
  const text = lines.join('\n')
  console.log('\n' + text)
  const full = SIZES.length === DEFAULT_SIZES.length && DEFAULT_SIZES.every((s) => SIZES.includes(s))
  if (process.env.BENCH_DOCS === '1' || (process.env.BENCH_DOCS !== '0' && full)) {
    writeDoc(join(root, 'docs', 'benchmarks.md'), text, 'memory-format-3')
    console.log('updated docs/benchmarks.md')
  }
  stopGuard()
}

await main()
