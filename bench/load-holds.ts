import type { KeyFormat } from '../src/keys.js'
import { createHolds, holdId, openRecordedStore, payloadOfSize, pool } from './memory-kit.js'

/**
 * One loader process of bench:memory: creates the holds `ord-<from>` to
 * `ord-<to - 1>` with the store's createHold in the layout recorded on the
 * Redis at BENCH_LOAD_URL (or, with BENCH_LOAD_PLAIN=1, one plain
 * `SET <key> 1 PX <ttl>` per id), then exits. Several run side by side: the
 * client's work per create, not Redis, limits one process on a busy machine.
 */
const env = (name: string): string => {
  const v = process.env[name]
  if (v === undefined || v === '') throw new Error(`${name} is required`)
  return v
}
const url = env('BENCH_LOAD_URL')
const from = Number(env('BENCH_LOAD_FROM'))
const to = Number(env('BENCH_LOAD_TO'))
const ttlMs = Number(env('BENCH_LOAD_TTL_MS'))
const format = Number(env('BENCH_LOAD_FORMAT')) as KeyFormat
const store = await openRecordedStore(url, 'bench:loader', format)
try {
  const ids = Array.from({ length: to - from }, (_v, i) => holdId('ord-', from + i))
  if (process.env.BENCH_LOAD_PLAIN === '1') {
    await pool(ids.length, 200, async (i) => { await store.redis.set(store.keys.order(ids[i] as string).timer, '1', 'PX', ttlMs) })
  } else {
    await createHolds(store, ids, () => ttlMs, process.env.BENCH_LOAD_PAYLOAD === '1' ? payloadOfSize() : undefined, 200)
  }
} finally {
  await store.close()
}
