import type { StoreContext } from './context.js'
import { countDeadLetters, findDeadLetters, replayDeadLetter, purgeDeadLetter } from './dead-letters.js'
import { direct } from './direct.js'
import { listDeadLetterPage } from './listing.js'

/**
 * The operator's actions on dead letters, shared by `checkoutctl` and the
 * admin API (one implementation). Bulk actions take a bound fixed before
 * they start (letters that died at or before `upTo`), so a dry run and the
 * run that follows it speak of the same letters, and a letter that dies
 * again while a replay runs is left for the operator, not replayed in a loop.
 */
export interface LetterRef {
  shard: number
  member: string
}

/** Every dead letter of one order (one per generation that died) queued again; the members replayed. */
export async function replayOrder (ctx: StoreContext, id: string): Promise<{ shard: number, replayed: string[] }> {
  const { shard, members } = await findDeadLetters(ctx, id)
  const replayed: string[] = []
  for (const member of members) if (await replayDeadLetter(ctx, shard, member)) replayed.push(member)
  return { shard, replayed }
}

/** Dead letters that died at or before `upTo` (server ms), all shards. */
export async function countDeadLettersUpTo (ctx: StoreContext, upTo: number): Promise<number> {
  const counts = await direct(ctx, async () => await Promise.all(Array.from({ length: ctx.keys.shards }, async (_v, shard) =>
    await ctx.redis.zcount(ctx.keys.shard(shard).dead, '-inf', upTo))))
  return counts.reduce((a, b) => a + b, 0)
}

const PAGE = 100

/**
 * Replays every dead letter that died at or before `upTo`, a page at a
 * time. Skipped: replayed or purged by someone else between the listing
 * and the replay.
 */
export async function replayDeadLettersUpTo (ctx: StoreContext, upTo: number): Promise<{ replayed: number, skipped: number }> {
  // Every page replays at least one letter or moves on to the next shard.
  const maxPages = Math.ceil(await countDeadLetters(ctx) / PAGE) + ctx.keys.shards + 1
  let replayed = 0
  let skipped = 0
  let cursor: string | undefined = '0'
  try {
    for (let page = 0; page < maxPages && cursor !== undefined; page++) {
      const { items, next } = await listDeadLetterPage(ctx, { limit: PAGE, cursor, maxScore: upTo })
      for (const d of items) {
        if (await replayDeadLetter(ctx, d.shard, d.member)) replayed++
        else skipped++
      }
      cursor = next
    }
  } catch (err) {
    throw Object.assign(err as Error, { progress: `${replayed} dead letters were replayed before this error` })
  }
  return { replayed, skipped }
}

/** Which of these letters are dead letters now (the dry run of a selection). */
export async function stillDead (ctx: StoreContext, refs: readonly LetterRef[]): Promise<LetterRef[]> {
  const scores = await direct(ctx, async () => await Promise.all(refs.map(async (r) =>
    await ctx.redis.zscore(ctx.keys.shard(r.shard).dead, r.member))))
  return refs.filter((_r, i) => scores[i] !== null)
}

/** Replays or purges the letters of a selection; the ones that were not dead letters any more are skipped. */
export async function actOnLetters (ctx: StoreContext, action: 'replay' | 'purge', refs: readonly LetterRef[]): Promise<{ done: number, skipped: number }> {
  let done = 0
  for (const r of refs) {
    const ok = action === 'replay' ? await replayDeadLetter(ctx, r.shard, r.member) : await purgeDeadLetter(ctx, r.shard, r.member)
    if (ok) done++
  }
  return { done, skipped: refs.length - done }
}
