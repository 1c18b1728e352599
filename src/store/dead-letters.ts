import { run, type StoreContext } from './context.js'

/**
 * The dead-letter sets: jobs whose handler used up its attempts. They stay
 * until an operator replays or purges them; their count is what to alert on.
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

/** Lists the dead-letter set of a shard, oldest first. */
export async function listDeadLetters (ctx: StoreContext, shard: number, limit = 100): Promise<DeadLetter[]> {
  const k = ctx.keys.shard(shard)
  const members = await ctx.redis.zrange(k.dead, '0', String(limit - 1))
  const out: DeadLetter[] = []
  for (const member of members) {
    const [id, generation, attempts, lastError, diedAt, payload] = await ctx.redis.hmget(k.job(member), 'i', 'g', 'a', 'e', 'f', 'p')
    const entry: DeadLetter = {
      shard,
      member,
      id: id ?? '',
      generation: Number(generation),
      attempts: Number(attempts),
      lastError: lastError ?? '',
      diedAt: Number(diedAt)
    }
    if (payload) entry.payload = JSON.parse(payload) as Record<string, unknown>
    out.push(entry)
  }
  return out
}

/** Dead-lettered jobs over all shards. */
export async function countDeadLetters (ctx: StoreContext): Promise<number> {
  const counts = await Promise.all(Array.from({ length: ctx.keys.shards }, async (_v, shard) =>
    await ctx.redis.zcard(ctx.keys.shard(shard).dead)))
  return counts.reduce((a, b) => a + b, 0)
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
