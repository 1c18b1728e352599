import type { StoreContext } from '../store/context.js'
import { direct } from '../store/direct.js'
import { parseEventEntry, type LifecycleEvent } from './schema.js'

/**
 * The events of one order among the newest `scan` entries of the events
 * stream, oldest first: what a timeline shows. Bounded by `scan` (the stream
 * is trimmed to EVENT_STREAM_MAXLEN anyway); an entry this release cannot
 * read is skipped.
 */
export async function readOrderEvents (ctx: StoreContext, id: string, scan = 5000): Promise<LifecycleEvent[]> {
  const rows = await direct(ctx, async () => await ctx.redis.xrevrange(ctx.keys.events, '+', '-', 'COUNT', scan))
  const events: LifecycleEvent[] = []
  for (const [, fields] of rows) {
    try {
      const event = parseEventEntry(fields)
      if (event.orderId === id) events.push(event)
    } catch {
      // Not a version-1 event: not ours to show.
    }
  }
  return events.reverse()
}
