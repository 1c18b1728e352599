import type { StoreContext } from '../store/context.js'
import { readOwnership } from '../store/membership.js'
import { readQueueStats, readStats } from '../store/stats.js'
import { fields, type Result } from './output.js'

const percent = (share: number | null) => share === null ? '-' : `${(share * 100).toFixed(1)}%`

/** `stats`: what is pending, dead and queued now, how the workers found the expiries so far, and who owns which shards. */
export async function statsCommand (store: StoreContext): Promise<Result> {
  const [queue, { found }, ownership] = await Promise.all([readQueueStats(store), readStats(store), readOwnership(store)])
  const total = found.event + found.sweep
  const eventShare = total === 0 ? null : found.event / total
  const sweepShare = total === 0 ? null : found.sweep / total
  return {
    json: { ...queue, found: { ...found, eventShare, sweepShare }, workers: ownership.workers, unownedShards: ownership.unowned },
    text: fields([
      ['pending holds', queue.pending],
      ['dead letters', queue.deadLetters],
      ['expiry jobs', queue.jobs.total],
      ['  due', queue.jobs.due],
      ['  running', queue.jobs.running],
      ['found by event', `${found.event} (${percent(eventShare)})`],
      ['found by sweep', `${found.sweep} (${percent(sweepShare)})`],
      ['workers', ownership.workers.length],
      ...ownership.workers.map((w): [string, string] =>
        [`  ${w.token.slice(0, 8)}`, w.draining ? 'stopping, owns no shard' : `owns ${w.shards.length} shard${w.shards.length === 1 ? '' : 's'}`]),
      ['shards without a live owner', ownership.unowned.length === 0 ? 0 : ownership.unowned.join(' ')]
    ])
  }
}
