import { run, type StoreContext } from './context.js'
import { countAcrossShards, direct, serverTime } from './direct.js'

/**
 * The dead-letter sets: jobs whose handler used up its attempts. They stay
 * until an operator replays or purges them, or until they are older than the
 * retention (DEAD_LETTER_RETENTION_MS); their count is what to alert on.
 */
export interface DeadLetter {
  shard: number
  member: string
  id: string
  generation: number
  diedAt: number
  attempts: number
  lastError: string
  payload?: Record<string, unknown>
}

/** Reads the job hashes of dead-letter members of one shard; a member whose hash is gone (purged meanwhile) is left out. */
export async function readDeadLetters (ctx: StoreContext, shard: number, members: string[]): Promise<DeadLetter[]> {
  const k = ctx.keys.shard(shard)
  const rows = await direct(ctx, async () =>
    await Promise.all(members.map(async (member) => await ctx.redis.hmget(k.job(member), 'i', 'g', 'a', 'e', 'f', 'p'))))
  const out: DeadLetter[] = []
  rows.forEach(([id, generation, attempts, lastError, diedAt, payload], i) => {
    if (id === null || id === undefined) return
    const entry: DeadLetter = {
      shard,
      member: members[i] as string,
      id,
      generation: Number(generation),
      attempts: Number(attempts),
      lastError: lastError ?? '',
      diedAt: Number(diedAt)
    }
    if (payload) entry.payload = JSON.parse(payload) as Record<string, unknown>
    out.push(entry)
  })
  return out
}

/** Lists the dead-letter set of a shard, oldest first. */
export async function listDeadLetters (ctx: StoreContext, shard: number, limit = 100): Promise<DeadLetter[]> {
  const members = await direct(ctx, async () => await ctx.redis.zrange(ctx.keys.shard(shard).dead, '0', String(limit - 1)))
  return await readDeadLetters(ctx, shard, members)
}

/** Dead-lettered jobs over all shards. */
export async function countDeadLetters (ctx: StoreContext): Promise<number> {
  return await countAcrossShards(ctx, (shard) => ctx.keys.shard(shard).dead)
}

/** The dead-letter members (`<generation>:<id>`) of one order id, every generation; read with ZSCAN, a slice at a time. */
export async function findDeadLetters (ctx: StoreContext, id: string): Promise<{ shard: number, members: string[] }> {
  const shard = ctx.keys.shardOf(id)
  const key = ctx.keys.shard(shard).dead
  const members: string[] = []
  let cursor = '0'
  // ZSCAN ends when its cursor comes back to 0; the bound only guards against a server that never says so.
  for (let round = 0; round < 1_000_000; round++) {
    const [next, flat] = await direct(ctx, async () => await ctx.redis.zscan(key, cursor, 'MATCH', `*:${id}`, 'COUNT', 1000))
    for (let i = 0; i < flat.length; i += 2) {
      const member = flat[i] as string
      // `*:<id>` also matches ids that end in `:<id>`; the member is `<generation>:<id>` exactly.
      if (/^\d+$/.test(member.slice(0, member.indexOf(':'))) && member.slice(member.indexOf(':') + 1) === id) members.push(member)
    }
    cursor = next
    if (cursor === '0') break
  }
  return { shard, members: [...new Set(members)] }
}

/** Queues a dead-lettered job again, due now, with fresh attempts. False when it is not dead-lettered. */
export async function replayDeadLetter (ctx: StoreContext, shard: number, member: string): Promise<boolean> {
  const k = ctx.keys.shard(shard)
  return Number(await run(ctx, 'replay', [k.dead, k.jobs, k.job(member)], [k.base, member])) === 1
}

/** Removes a dead-lettered job for good. False when it is not dead-lettered. */
export async function purgeDeadLetter (ctx: StoreContext, shard: number, member: string): Promise<boolean> {
  const k = ctx.keys.shard(shard)
  return Number(await run(ctx, 'purge', [k.dead, k.job(member)], [member])) === 1
}

export interface PurgeResult {
  purged: number
  /** Dead letters that died at or before this (server time, ms) were removed. */
  cutoff: number
}

/**
 * Removes the dead letters that died more than `olderThanMs` ago, with their
 * job hashes: in every shard, batches of at most `batch` members read with
 * ZRANGEBYSCORE … LIMIT, each removed by the purge script. Safe to run from
 * several workers at once: a member purged by another counts for that one.
 */
export async function purgeDeadLettersOlderThan (
  ctx: StoreContext, olderThanMs: number, opts: { batch?: number } = {}
): Promise<PurgeResult> {
  const cutoff = await serverTime(ctx) - olderThanMs
  return { purged: await purgeDeadLettersUpTo(ctx, cutoff, opts), cutoff }
}

/** Removes the dead letters that died at or before `cutoff` (server ms): what purgeDeadLettersOlderThan and the admin API run. */
export async function purgeDeadLettersUpTo (ctx: StoreContext, cutoff: number, opts: { batch?: number } = {}): Promise<number> {
  const batch = Math.max(1, opts.batch ?? 100)
  let purged = 0
  for (let shard = 0; shard < ctx.keys.shards; shard++) {
    const dead = ctx.keys.shard(shard).dead
    // Letters that die from now on score above the cutoff, so these rounds are enough.
    const rounds = Math.ceil(await direct(ctx, async () => await ctx.redis.zcount(dead, '-inf', cutoff)) / batch)
    for (let round = 0; round < rounds; round++) {
      const members = await direct(ctx, async () => await ctx.redis.zrangebyscore(dead, '-inf', cutoff, 'LIMIT', 0, batch))
      if (members.length === 0) break
      const removed = await Promise.all(members.map(async (member) => await purgeDeadLetter(ctx, shard, member)))
      purged += removed.filter(Boolean).length
    }
  }
  return purged
}
