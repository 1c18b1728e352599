import type { StoreContext } from '../store/context.js'
import { readQueueStats, readStats } from '../store/stats.js'
import { fields, type Result } from './output.js'

const percent = (share: number | null) => share === null ? '-' : `${(share * 100).toFixed(1)}%`

/** `stats`: what is pending, dead and queued now, and how the workers found the expiries so far. */
export async function statsCommand (store: StoreContext): Promise<Result> {
  const [queue, { found }] = await Promise.all([readQueueStats(store), readStats(store)])
  const total = found.event + found.sweep
  const eventShare = total === 0 ? null : found.event / total
  const sweepShare = total === 0 ? null : found.sweep / total
  return {
    json: { ...queue, found: { ...found, eventShare, sweepShare } },
    text: fields([
      ['pending holds', queue.pending],
      ['dead letters', queue.deadLetters],
      ['expiry jobs', queue.jobs.total],
      ['  due', queue.jobs.due],
      ['  running', queue.jobs.running],
      ['found by event', `${found.event} (${percent(eventShare)})`],
      ['found by sweep', `${found.sweep} (${percent(sweepShare)})`]
    ])
  }
}
