import { cpus, loadavg } from 'node:os'
import { Redis } from 'ioredis'
import { loadConfig, type Config } from '../src/config.js'
import { createKeyspace, type KeyFormat, type Keyspace } from '../src/keys.js'
import { closeRedis } from '../src/redis/connection.js'
import { DEFAULT_TIMEOUTS, roleOptions } from '../src/redis/options.js'
import { createHold } from '../src/store/checkout-store.js'
import { createStoreContext, type StoreContext } from '../src/store/context.js'
import { openKeyspace } from '../src/store/layout.js'
import { killAll } from './children.js'
import { redisVersion } from './redis-server.js'
import { sleep } from './util.js'

/**
 * What bench:memory and bench:growth share: order ids of a fixed length, a
 * payload of a fixed size, a store context with the project's default
 * layout, bounded concurrent creates, Redis's used_memory once it has
 * settled, and a time cap on the whole run.
 */
export const ID_LENGTH = 25

/** An order id of exactly ID_LENGTH characters: `<tag><number, zero-padded>`. */
export function holdId (tag: string, i: number): string {
  const id = `${tag}${String(i).padStart(ID_LENGTH - tag.length, '0')}`
  if (id.length !== ID_LENGTH) throw new Error(`id ${id} is not ${ID_LENGTH} characters`)
  return id
}

export const PAYLOAD_BYTES = 200

/** A cart-like JSON object whose serialized form is exactly PAYLOAD_BYTES bytes. */
export function payloadOfSize (bytes = PAYLOAD_BYTES): Record<string, unknown> {
  const base = { items: [{ sku: 'SKU-000123', qty: 2, price: 1999 }, { sku: 'SKU-004567', qty: 1, price: 4500 }], currency: 'EUR', note: '' }
  const pad = bytes - JSON.stringify(base).length
  if (pad < 0) throw new Error(`a payload cannot be as small as ${bytes} bytes`)
  const payload = { ...base, note: 'x'.repeat(pad) }
  if (Buffer.byteLength(JSON.stringify(payload)) !== bytes) throw new Error('payload size is off')
  return payload
}

export interface BenchStore {
  config: Config
  keys: Keyspace
  ctx: StoreContext
  redis: Redis
  close: () => Promise<void>
}

/**
 * A worker-role connection (auto-pipelining, waits out a reconnect) without
 * its 2 s command timeout: the benchmark loads up to a million holds with
 * hundreds in flight on a machine shared with other work, where a process
 * starved of CPU for a moment would otherwise see every reply it has not yet
 * read time out. The store calls and scripts are the real ones.
 */
export function benchRedis (url: string, name: string): Redis {
  return new Redis(url, { ...roleOptions('worker', DEFAULT_TIMEOUTS), commandTimeout: undefined, connectionName: name })
}

/** A store context as the API builds it by default (KEY_PREFIX, KEY_SHARDS, retention from loadConfig), on a benchRedis connection. */
export function openStore (redisUrl: string, name = 'bench:store', keyspace?: Keyspace): BenchStore {
  const config = loadConfig({ ...process.env, REDIS_URL: redisUrl })
  const keys = keyspace ?? createKeyspace(config.KEY_PREFIX, config.KEY_SHARDS)
  const redis = benchRedis(redisUrl, name)
  const ctx = createStoreContext(redis, keys, config.CHECKOUT_RESULT_RETENTION_MS)
  return { config, keys, ctx, redis, close: async () => await closeRedis(redis) }
}

/**
 * A store context whose keyspace follows the layout recorded in Redis, or
 * records one in `format` (default KEY_FORMAT) for a new prefix: what the API
 * and the worker do at start, so holds made here are the ones a worker
 * started on the same Redis looks for.
 */
export async function openRecordedStore (redisUrl: string, name = 'bench:store', format?: KeyFormat): Promise<BenchStore> {
  const config = loadConfig({ ...process.env, REDIS_URL: redisUrl })
  const redis = benchRedis(redisUrl, name)
  try {
    const keys = await openKeyspace(redis, config.KEY_PREFIX, config.KEY_SHARDS, console, format ?? config.KEY_FORMAT as KeyFormat)
    const ctx = createStoreContext(redis, keys, config.CHECKOUT_RESULT_RETENTION_MS)
    return { config, keys, ctx, redis, close: async () => await closeRedis(redis) }
  } catch (err) {
    await closeRedis(redis)
    throw err
  }
}

/** Calls and µs per command (`INFO commandstats`), e.g. `evalsha`, `hset`. */
export type CommandStats = Map<string, { calls: number, usec: number }>

export async function commandStats (admin: Redis): Promise<CommandStats> {
  const out: CommandStats = new Map()
  for (const m of String(await admin.info('commandstats')).matchAll(/^cmdstat_(\S+?):calls=(\d+),usec=(\d+)/gm)) {
    out.set(m[1] as string, { calls: Number(m[2]), usec: Number(m[3]) })
  }
  return out
}

/** What each command added between two readings; the readings' own INFO left out. */
export function statsDelta (from: CommandStats, to: CommandStats): CommandStats {
  const out: CommandStats = new Map()
  for (const [name, t] of to) {
    if (name === 'info') continue
    const f = from.get(name) ?? { calls: 0, usec: 0 }
    if (t.calls > f.calls) out.set(name, { calls: t.calls - f.calls, usec: t.usec - f.usec })
  }
  return out
}

/** Runs fn(0..count-1) with at most `concurrency` calls in flight. */
export async function pool (count: number, concurrency: number, fn: (i: number) => Promise<void>): Promise<void> {
  let next = 0
  const lane = async () => {
    while (next < count) await fn(next++)
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, lane))
}

/**
 * One hold in every shard, so the scripts are loaded and every shard's
 * counter and deadline index exist before a measurement starts.
 */
export async function warmUp (store: BenchStore, ttlMs: number): Promise<void> {
  const seen = new Set<number>()
  for (let i = 0; seen.size < store.keys.shards && i < 100_000; i++) {
    const id = holdId('warm-', i)
    const shard = store.keys.shardOf(id)
    if (seen.has(shard)) continue
    seen.add(shard)
    await createHold(store.ctx, { id, ttlMs })
  }
}

/** Creates one hold per id through the store's createHold, `concurrency` at a time. */
export async function createHolds (
  store: BenchStore, ids: string[], ttlMs: (i: number) => number, payload?: Record<string, unknown>, concurrency = 1000
): Promise<void> {
  await pool(ids.length, concurrency, async (i) => {
    await createHold(store.ctx, { id: ids[i] as string, ttlMs: ttlMs(i), payload })
  })
}

export async function usedMemory (admin: Redis): Promise<number> {
  const info = String(await admin.info('memory'))
  return Number(/^used_memory:(\d+)/m.exec(info)?.[1])
}

/**
 * used_memory once Redis has finished its background work (incremental
 * rehashing, client buffers given back): two readings 500 ms apart within
 * 16 KiB of each other, at most 15 s.
 */
export async function settledMemory (admin: Redis): Promise<number> {
  await sleep(1000)
  let last = await usedMemory(admin)
  for (let i = 0; i < 30; i++) {
    await sleep(500)
    const now = await usedMemory(admin)
    if (Math.abs(now - last) < 16_384) return now
    last = now
  }
  return last
}

/** Stops the run (and every process it started) after maxMs, on Ctrl-C and at exit. */
export function guardRun (name: string, maxMs: number): () => void {
  process.on('exit', killAll)
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      console.error(`\n${signal}: stopping every process ${name} started`)
      killAll()
      process.exit(130)
    })
  }
  const watchdog = setTimeout(() => {
    console.error(`${name} ran longer than ${maxMs / 60_000} min; stopping`)
    killAll()
    process.exit(1)
  }, maxMs)
  watchdog.unref()
  return () => clearTimeout(watchdog)
}

/** The machine line of a doc section: cores, Node, Redis (default settings), load. */
export function machineLine (): string {
  const cpu = cpus()
  return `${cpu.length} cores (${cpu[0]?.model.trim() ?? 'unknown CPU'}), Node ${process.version}, ` +
    `redis-server ${redisVersion()} (default settings), 1-min load average ${loadavg()[0]?.toFixed(2)} at the end`
}

/** A whole number in the docs' style (1,234). */
export const fmt = (n: number | undefined, digits = 0): string =>
  n === undefined || Number.isNaN(n) ? '–' : n.toLocaleString('en', { minimumFractionDigits: digits, maximumFractionDigits: digits })

/** A positive integer from the environment, or the default. */
export function envNumber (name: string, dflt: number, min: number, max: number): number {
  const raw = process.env[name]
  if (raw === undefined || raw.trim() === '') return dflt
  const n = Number(raw)
  if (!Number.isFinite(n) || n < min || n > max) throw new Error(`${name}=${raw}: expected a number from ${min} to ${max}`)
  return n
}

/** A comma list of sizes (1000, 100k, 1M, 1e6 all accepted). */
export function envSizes (name: string, dflt: number[]): number[] {
  const raw = process.env[name]
  if (raw === undefined || raw.trim() === '') return dflt
  return raw.split(',').map((s) => s.trim()).filter(Boolean).map((s) => {
    const m = /^(\d+(?:\.\d+)?(?:e\d+)?)([kKmM]?)$/.exec(s)
    const n = m ? Number(m[1]) * ({ k: 1e3, m: 1e6 }[(m[2] ?? '').toLowerCase()] ?? 1) : Number.NaN
    if (!Number.isInteger(n) || n < 1 || n > 5_000_000) throw new Error(`${name}: "${s}" is not a size from 1 to 5,000,000`)
    return n
  })
}
