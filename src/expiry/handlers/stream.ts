import type { RedisClient } from '../../redis/connection.js'
import { eventFields, EVENT_VERSION, type LifecycleEvent } from '../../events/schema.js'
import type { ExpiryEvent, ExpiryHandler } from '../handlers.js'

/**
 * The built-in `stream` handler: appends the `expired` lifecycle event to
 * the events stream (`<KEY_PREFIX>events`, docs/events.md) with the eventId
 * `<idempotencyKey>:expired`, the same on every run of one expiry, so a
 * consumer drops the copy a retried run writes. A failing XADD fails the
 * run, which then goes through retries and the dead-letter set.
 */
export interface StreamOptions {
  redis: RedisClient
  /** `<KEY_PREFIX>events`. */
  key: string
  /** The stream is trimmed to about this many entries (EVENT_STREAM_MAXLEN). */
  maxLen: number
}

/** The `expired` event of an expiry: no payload contents, only their size. */
export function expiredEvent (event: ExpiryEvent): LifecycleEvent {
  return {
    v: EVENT_VERSION,
    eventId: `${event.idempotencyKey}:expired`,
    type: 'expired',
    orderId: event.id,
    generation: event.generation,
    at: event.expiredAt,
    expiresAt: event.deadline,
    payloadBytes: event.payload === undefined ? 0 : Buffer.byteLength(JSON.stringify(event.payload))
  }
}

export function streamHandler ({ redis, key, maxLen }: StreamOptions): ExpiryHandler {
  return async (event, ctx) => {
    const written = redis.xadd(key, 'MAXLEN', '~', maxLen, '*', ...eventFields(expiredEvent(event)))
    // A command cannot be taken back; the abort only stops the run from waiting for Redis.
    let onAbort: (() => void) | undefined
    const aborted = new Promise<never>((_resolve, reject) => {
      onAbort = () => reject(new Error(`stream ${key}: aborted before Redis answered`))
      if (ctx.signal.aborted) onAbort()
      else ctx.signal.addEventListener('abort', onAbort, { once: true })
    })
    aborted.catch(() => {})
    try {
      const id = await Promise.race([written, aborted])
      ctx.log.debug({ streamId: id }, 'expired event written')
    } catch (err) {
      throw new Error(`stream ${key}: ${err instanceof Error ? err.message : String(err)}`, { cause: err })
    } finally {
      if (onAbort) ctx.signal.removeEventListener('abort', onAbort)
    }
  }
}
