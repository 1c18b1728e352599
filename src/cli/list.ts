import type { StoreContext } from '../store/context.js'
import type { DeadLetter } from '../store/dead-letters.js'
import { listDeadLetterPage, listPendingHolds, type PendingHold } from '../store/listing.js'
import { iso, table, type Result } from './output.js'

const nextLine = (next: string | undefined) => next === undefined ? 'no more pages' : `next cursor: ${next}`

/** `list --status pending|dead`: one page, and the cursor of the next. */
export async function listCommand (
  store: StoreContext, status: 'pending' | 'dead', limit: number, cursor: string | undefined
): Promise<Result> {
  if (status === 'pending') {
    const page = await listPendingHolds(store, { limit, cursor })
    const text = page.items.length === 0
      ? 'no pending holds on this page'
      : table<PendingHold>(page.items, [
        { title: 'SHARD', value: (h) => h.shard, right: true },
        { title: 'ID', value: (h) => h.id },
        { title: 'EXPIRES AT', value: (h) => iso(h.expiresAt) },
        { title: 'REMAINING MS', value: (h) => h.remainingMs, right: true }
      ])
    return { json: { status, items: page.items, next: page.next ?? null }, text: `${text}\n\n${nextLine(page.next)}` }
  }
  const page = await listDeadLetterPage(store, { limit, cursor })
  const text = page.items.length === 0
    ? 'no dead letters on this page'
    : table<DeadLetter>(page.items, [
      { title: 'SHARD', value: (d) => d.shard, right: true },
      { title: 'ID', value: (d) => d.id },
      { title: 'GENERATION', value: (d) => d.generation, right: true },
      { title: 'DIED AT', value: (d) => iso(d.diedAt) },
      { title: 'ATTEMPTS', value: (d) => d.attempts, right: true },
      { title: 'LAST ERROR', value: (d) => d.lastError, max: 60 }
    ])
  return { json: { status, items: page.items, next: page.next ?? null }, text: `${text}\n\n${nextLine(page.next)}` }
}
