import { Buffer } from 'node:buffer'
import { createHash } from 'node:crypto'
import { packingArg, type Keyspace, type OrderKeys, type Packing } from '../keys.js'
import type { RedisClient } from '../redis/connection.js'
import { replyCode } from '../redis/errors.js'
import { NOSCRIPT_ATTEMPTS, scriptSources } from './scripts.js'

/**
 * Where key format 3 keeps a pending hold, as includes/packed.lua places it
 * (holdSpot, bucketOf, chainKey, longKey), for the read cache: Redis
 * tracks only the keys a script declares, not the bucket the get script
 * reads by a name it builds, so the cache is told of every write to the
 * shards' bucket keys (BCAST) and drops the holds cached from that bucket.
 * test/read-cache-packed.test.ts checks this against where the scripts put holds.
 */

/** The packed record's header (packed.lua RECORD_HEADER_LEN). */
const RECORD_HEADER_LEN = 18

/**
 * The key whose writes change what a read of `id` answered: the bucket
 * family `<base>b:<i>` (its chain keys `<base>b:<i>.<k>` count as it) or
 * `<base>pk:<h>` while pending, given the table's level `l` and split
 * pointer `s` read with it; `<base>order:<id>` once ended.
 */
export function packedHoldKey (base: string, id: string, packing: Packing, table: { l: number, s: number }): string {
  const hex = createHash('sha1').update(id).digest('hex')
  const bytes = Buffer.byteLength(id)
  if (bytes + RECORD_HEADER_LEN > packing.hashValue || bytes > packing.zsetValue) return `${base}pk:${hex.slice(0, 20)}`
  const hash = Number.parseInt(hex.slice(0, 8), 16)
  const size = 2 ** table.l
  let b = hash % size
  if (b < table.s) b = hash % (size * 2)
  return `${base}b:${b}`
}

/** The prefixes whose writes the cache must hear of on format 3 (CLIENT TRACKING ... BCAST PREFIX ...). */
export function packedTrackingPrefixes (keys: Keyspace): string[] {
  return Array.from({ length: keys.shards }, (_v, shard) => {
    const base = keys.shard(shard).base
    return [`${base}b:`, `${base}pk:`, `${base}order:`]
  }).flat()
}

const CHAIN = /^b:\d+\.\d+$/

/**
 * The cache keys an invalidation of `key` concerns: the key itself, its
 * bucket family for a chain key (`<base>b:<i>.<k>` → `<base>b:<i>`), and
 * its shard base (`<prefix>{<tag>}:`), under which format 3 reads in flight wait.
 */
export function invalidationTargets (key: string): string[] {
  const end = key.indexOf('}:')
  if (end < 0) return [key]
  const base = key.slice(0, end + 2)
  const rest = key.slice(base.length)
  return CHAIN.test(rest) ? [key, `${base}${rest.slice(0, rest.indexOf('.'))}`, base] : [key, base]
}

let packedGet: { lua: string, sha: string } | undefined
const packedGetScript = () => {
  if (packedGet) return packedGet
  const lua = scriptSources().find((script) => script.name === 'packed-get')?.lua
  if (lua === undefined) throw new Error('script packed-get not found')
  return (packedGet = { lua, sha: createHash('sha1').update(lua).digest('hex') })
}

/**
 * The get script's reply and the bucket table it read, in one MULTI, so
 * packedHoldKey names the bucket the script looked in. A Redis that lost
 * its scripts (SCRIPT FLUSH, a promoted replica) gets it loaded once.
 */
export async function readPackedTracked (
  reader: RedisClient, k: OrderKeys, id: string, packing: Packing
): Promise<{ reply: unknown[], table: { l: number, s: number } }> {
  const script = packedGetScript()
  for (let attempt = 0; ; attempt++) {
    const results = await reader.multi()
      .evalsha(script.sha, 2, k.table, k.order, k.base, id, packingArg(packing))
      .hmget(k.table, 'l', 's')
      .exec()
    if (results === null) throw new Error('MULTI of the cached read was discarded')
    const [[getErr, reply], [tableErr, table]] = results as [[Error | null, unknown[]], [Error | null, Array<string | null>]]
    // Not run: load it and send the read again (a flush may come between, a few times at most).
    if (getErr && replyCode(getErr) === 'NOSCRIPT' && attempt + 1 < NOSCRIPT_ATTEMPTS) {
      await reader.script('LOAD', script.lua)
      continue
    }
    if (getErr) throw getErr
    if (tableErr) throw tableErr
    return { reply, table: { l: Number(table[0] ?? 0), s: Number(table[1] ?? 0) } }
  }
}
