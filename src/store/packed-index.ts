import type { ShardKeys } from '../keys.js'
import type { RedisClient } from '../redis/connection.js'

/**
 * Reading the deadline index of key format 3 from TypeScript (the CLI's
 * list and stats): a top sorted set of bucket bounds over sorted sets of at
 * most 128 members (docs/keys.md). Every member of a bucket is at least its
 * bound and at most the next bucket's bound, so the buckets read in order
 * give the deadlines in order; members of equal deadline may sit in two
 * buckets, so a page is sorted by (deadline, member) before it is cut.
 */
export interface IndexEntry {
  member: string
  score: number
}

const after = (e: IndexEntry, from: { score: string, member: string }) =>
  e.score > Number(from.score) || (e.score === Number(from.score) && e.member > from.member)

/** Up to `limit` entries of one shard's index after a position; `more` when the shard may hold further ones. */
export async function pagePackedIndex (
  redis: RedisClient, k: ShardKeys, from: { score: string, member: string } | undefined, limit: number, maxScore: number | undefined
): Promise<{ entries: IndexEntry[], more: boolean }> {
  const flat = await redis.zrange(k.index, '0', '-1', 'WITHSCORES')
  const entries: IndexEntry[] = []
  const min = from?.score ?? '-inf'
  const max = maxScore === undefined ? '+inf' : String(maxScore)
  for (let i = 0; i < flat.length; i += 2) {
    const nextBound = i + 3 < flat.length ? Number(flat[i + 3]) : Infinity
    // All of this bucket is before the cursor.
    if (from && nextBound < Number(from.score)) continue
    // Entries at a bound past the last one a full page needs cannot come first.
    const sorted = entries.length >= limit ? [...entries].sort(byDeadline) : undefined
    if (sorted && Number(flat[i + 1]) > (sorted[limit - 1] as IndexEntry).score) return { entries: sorted.slice(0, limit), more: true }
    if (maxScore !== undefined && Number(flat[i + 1]) > maxScore) break
    const members = await redis.zrangebyscore(`${k.base}i:${flat[i] as string}`, min, max, 'WITHSCORES')
    for (let j = 0; j < members.length; j += 2) {
      const e = { member: members[j] as string, score: Number(members[j + 1]) }
      if (!from || after(e, from)) entries.push(e)
    }
  }
  entries.sort(byDeadline)
  return { entries: entries.slice(0, limit), more: entries.length > limit }
}

const byDeadline = (a: IndexEntry, b: IndexEntry) => a.score - b.score || (a.member < b.member ? -1 : a.member > b.member ? 1 : 0)

/** The order id of an index member: itself, or for a long id (`#<hash>`) the id in its record. */
export async function idOfMember (redis: RedisClient, k: ShardKeys, member: string): Promise<string | undefined> {
  if (!member.startsWith('#')) return member
  const record = await redis.getBuffer(`${k.base}pk:${member.slice(1)}`)
  if (!record || record.length < RECORD_HEADER_LEN) return undefined
  const idLength = record[RECORD_HEADER_LEN - 1] as number
  return record.subarray(RECORD_HEADER_LEN, RECORD_HEADER_LEN + idLength).toString()
}

/** The packed record's header (includes/packed.lua): deadline, its distance from createdAt, generation, payload flag, id length. */
const RECORD_HEADER_LEN = 18

/** Pending holds of one shard: the bucket table's count. */
export async function countPacked (redis: RedisClient, k: ShardKeys): Promise<number> {
  return Number(await redis.hget(k.table, 'n') ?? 0)
}
