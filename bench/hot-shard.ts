import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { loadConfig } from '../src/config.js'
import type { KeyFormat } from '../src/keys.js'
import { closeRedis } from '../src/redis/connection.js'
import { createHold } from '../src/store/checkout-store.js'
import { createStoreContext } from '../src/store/context.js'
import { openKeyspace } from '../src/store/layout.js'
import { killAll, root, type NodeChild } from './children.js'
import { startExpiryFleet } from './fleet-workers.js'
import { codeVersion, describeMachine } from './machine.js'
import { benchRedis, guardRun, holdId, pool } from './memory-kit.js'
import { readRecords } from './record.js'
import { startRedisServer } from './redis-server.js'
import { summarize } from './stats.js'
import type { Cell, Hold } from './systems/types.js'
import { sleep } from './util.js'

/**
 * `node --import tsx bench/hot-shard.ts`: what one hot shard does to a
 * fleet whose workers each own some shards (docs/delivery.md, "Shard
 * ownership"). Two worker processes, 16 shards. HOT holds all in shard 0,
 * due within one second, and COLD holds spread over the other shards, due
 * evenly over the same second. Baseline, in the same run: the same numbers
 * of holds spread over every shard. Reports lateness of the hot shard's and
 * of the other shards' holds, and when the last of each ran.
 *   BENCH_HOT    holds in the hot shard (default 10,000)
 *   BENCH_COLD   holds in the other shards (default 1,000)
 */
const HOT = Number(process.env.BENCH_HOT ?? 10_000)
const COLD = Number(process.env.BENCH_COLD ?? 1_000)
const LEAD_MS = 3000
const stop = guardRun('bench:hot-shard', 10 * 60_000)
process.on('exit', killAll)

interface Run { layout: 'hot' | 'spread', hot: ReturnType<typeof summarize>, cold: ReturnType<typeof summarize>, hotLastMs: number, coldLastMs: number }

async function run (layout: Run['layout'], dir: string): Promise<Run> {
  const redis = await startRedisServer()
  const conn = benchRedis(redis.url, 'bench:hot-producer')
  let workers: NodeChild[] = []
  try {
    const config = loadConfig({ ...process.env, REDIS_URL: redis.url })
    const keys = await openKeyspace(conn, config.KEY_PREFIX, config.KEY_SHARDS, console, config.KEY_FORMAT as KeyFormat)
    const ctx = createStoreContext(conn, keys, config.CHECKOUT_RESULT_RETENTION_MS)
    let n = 0
    const cell: Cell = { redisUrl: redis.url, port: redis.port, recordFile: join(dir, `${layout}.jsonl`), logFile: () => join(dir, `${layout}.worker${n++}.log`), workerEnv: {} }
    writeFileSync(cell.recordFile, '')
    workers = await startExpiryFleet(cell, 2)
    // Ids found by trying: the hot ones all in shard 0, the cold ones anywhere but (for 'hot') shard 0.
    const hotIds: string[] = []
    const coldIds: string[] = []
    for (let i = 0; hotIds.length < HOT || coldIds.length < COLD; i++) {
      const id = holdId('hot-', i)
      const inZero = keys.shardOf(id) === 0
      if (layout === 'spread') (hotIds.length < HOT ? hotIds : coldIds).push(id)
      else if (inZero && hotIds.length < HOT) hotIds.push(id)
      else if (!inZero && coldIds.length < COLD) coldIds.push(id)
    }
    const t0 = Date.now() + LEAD_MS + Math.ceil((HOT + COLD) * 0.15)
    const holds: Hold[] = [...hotIds.map((id, i) => ({ id, deadline: t0 + Math.floor(i * 1000 / HOT) })),
      ...coldIds.map((id, i) => ({ id, deadline: t0 + Math.floor(i * 1000 / COLD) }))]
    const deadlines = new Map<string, number>()
    await pool(holds.length, 200, async (i) => {
      const h = holds[i] as Hold
      const view = await createHold(ctx, { id: h.id, ttlMs: Math.max(1000, h.deadline - Date.now()) })
      deadlines.set(h.id, view.expiresAt)
    })
    const all = new Set(holds.map((h) => h.id))
    for (let waited = 0; waited < 60_000; waited += 200) {
      await sleep(200)
      if (new Set(readRecords(cell.recordFile).map((r) => r.id)).size >= all.size && Date.now() > t0 + 1000) break
    }
    await sleep(500)
    const records = readRecords(cell.recordFile)
    const pick = (ids: string[]) => new Map(ids.map((id) => [id, deadlines.get(id) as number]))
    const first = Math.min(...deadlines.values())
    const lastRun = (ids: Set<string>) => Math.max(...records.filter((r) => ids.has(r.id)).map((r) => r.now)) - first
    return {
      layout,
      hot: summarize(records.filter((r) => hotIds.includes(r.id)), pick(hotIds), first),
      cold: summarize(records.filter((r) => !hotIds.includes(r.id)), pick(coldIds), first),
      hotLastMs: lastRun(new Set(hotIds)),
      coldLastMs: lastRun(new Set(coldIds))
    }
  } finally {
    for (const w of workers) w.proc.kill('SIGKILL')
    await closeRedis(conn)
    await redis.destroy()
  }
}

const dir = join(root, 'bench', 'results', `hot-shard-${new Date().toISOString().replace(/[:.]/g, '-')}`)
mkdirSync(dir, { recursive: true })
try {
  const results = [await run('spread', dir), await run('hot', dir)]
  const ms = (n: number | undefined) => n === undefined ? 'n/a' : `${Math.round(n)} ms`
  console.log(`\nhot shard: ${HOT.toLocaleString('en')} + ${COLD.toLocaleString('en')} holds due within 1 s, 2 workers, 16 shards; ${describeMachine().text}; ${codeVersion()}\n`)
  console.log('| layout | hold set | delivered | duplicated | lateness p50 | p99 | last run after the first deadline |')
  console.log('| --- | --- | ---: | ---: | ---: | ---: | ---: |')
  for (const r of results) {
    const name = r.layout === 'hot' ? 'all in shard 0' : 'spread (baseline)'
    const cold = r.layout === 'hot' ? 'the other 15 shards' : 'spread (baseline)'
    console.log(`| ${name} | ${HOT.toLocaleString('en')} | ${r.hot.delivered} | ${r.hot.duplicated} | ${ms(r.hot.lateness?.p50)} | ${ms(r.hot.lateness?.p99)} | ${ms(r.hotLastMs)} |`)
    console.log(`| ${cold} | ${COLD.toLocaleString('en')} | ${r.cold.delivered} | ${r.cold.duplicated} | ${ms(r.cold.lateness?.p50)} | ${ms(r.cold.lateness?.p99)} | ${ms(r.coldLastMs)} |`)
  }
} finally {
  stop()
  killAll()
}
