import type { StoreContext } from '../store/context.js'
import { replayDeadLettersUpTo, replayOrder } from '../store/dead-letter-actions.js'
import { serverTime } from '../store/direct.js'
import { deadLetterLayouts } from '../store/migrating-store.js'
import { CliErrors } from './errors.js'
import { fields, type Result } from './output.js'

/**
 * `replay <id>`: every dead letter of the order (one per generation that died)
 * goes back to its shard's job queue, due now, with fresh attempts; the
 * replay script does that atomically, once per dead letter.
 */
export async function replayCommand (store: StoreContext, id: string): Promise<Result> {
  let found = { shard: 0, replayed: [] as string[] }
  // While migrating from key format 1, the old layout's dead letters too (docs/keys.md).
  for (const s of deadLetterLayouts(store)) if (found.replayed.length === 0) found = await replayOrder(s, id)
  const { shard, replayed } = found
  if (replayed.length === 0) throw CliErrors.notFound(`No dead letter for order ${id}`)
  return {
    json: { id, shard, replayed: replayed.length, members: replayed },
    text: fields([['order', id], ['shard', shard], ['replayed', replayed.join(', ')]])
  }
}

/**
 * `replay --all-dead`: replays every dead letter once. Only letters that
 * died before the command started are taken, so one that dies again while
 * this runs (its handler still failing) is left for the operator rather than
 * replayed in a loop.
 */
export async function replayAllCommand (store: StoreContext): Promise<Result> {
  const upTo = await serverTime(store)
  let replayed = 0
  let skipped = 0
  for (const s of deadLetterLayouts(store)) {
    const r = await replayDeadLettersUpTo(s, upTo)
    replayed += r.replayed
    skipped += r.skipped
  }
  return {
    json: { replayed, skipped },
    // Skipped: replayed or purged by someone else between the listing and the replay.
    text: fields([['replayed', replayed], ['skipped', skipped]])
  }
}
