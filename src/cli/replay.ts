import type { StoreContext } from '../store/context.js'
import { countDeadLetters, findDeadLetters, replayDeadLetter } from '../store/dead-letters.js'
import { serverTime } from '../store/direct.js'
import { listDeadLetterPage } from '../store/listing.js'
import { CliErrors } from './errors.js'
import { fields, type Result } from './output.js'

/**
 * `replay <id>`: every dead letter of the order (one per generation that died)
 * goes back to its shard's job queue, due now, with fresh attempts; the
 * replay script does that atomically, once per dead letter.
 */
export async function replayCommand (store: StoreContext, id: string): Promise<Result> {
  const { shard, members } = await findDeadLetters(store, id)
  const replayed: string[] = []
  for (const member of members) if (await replayDeadLetter(store, shard, member)) replayed.push(member)
  if (replayed.length === 0) throw CliErrors.notFound(`No dead letter for order ${id}`)
  return {
    json: { id, shard, replayed: replayed.length, members: replayed },
    text: fields([['order', id], ['shard', shard], ['replayed', replayed.join(', ')]])
  }
}

const PAGE = 100

/**
 * `replay --all-dead`: pages through every dead-letter set and replays each
 * member once. Only letters that died before the command started are taken,
 * so one that dies again while this runs (its handler still failing) is left
 * for the operator rather than replayed in a loop.
 */
export async function replayAllCommand (store: StoreContext): Promise<Result> {
  const startedAt = await serverTime(store)
  // Every page replays at least one letter or moves on to the next shard.
  const maxPages = Math.ceil(await countDeadLetters(store) / PAGE) + store.keys.shards + 1
  let replayed = 0
  let skipped = 0
  let cursor: string | undefined = '0'
  try {
    for (let page = 0; page < maxPages && cursor !== undefined; page++) {
      const { items, next } = await listDeadLetterPage(store, { limit: PAGE, cursor, maxScore: startedAt })
      for (const d of items) {
        if (await replayDeadLetter(store, d.shard, d.member)) replayed++
        else skipped++
      }
      cursor = next
    }
  } catch (err) {
    throw Object.assign(err as Error, { progress: `${replayed} dead letters were replayed before this error` })
  }
  return {
    json: { replayed, skipped },
    // Skipped: replayed or purged by someone else between the listing and the replay.
    text: fields([['replayed', replayed], ['skipped', skipped]])
  }
}
