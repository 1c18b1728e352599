import type { RedisClient } from '../../redis/connection.js'
import type { ExpiryHandler } from '../handlers.js'

/**
 * The built-in `stream` handler, kept so that EXPIRY_HANDLERS naming it
 * still starts. It writes nothing: the `expired` event is recorded in the
 * shard's outbox by the script that records the expiry (expire-order.lua),
 * like every other lifecycle event, so it comes once per expiry whatever
 * the other handlers do and wherever `stream` stands in the list
 * (docs/events.md). Earlier releases wrote the event here, which a failing
 * handler listed before it could prevent.
 */
export interface StreamOptions {
  redis: RedisClient
  /** `<KEY_PREFIX>events`. */
  key: string
  /** The stream is trimmed to about this many entries (EVENT_STREAM_MAXLEN). */
  maxLen: number
}

export function streamHandler (_opts: StreamOptions): ExpiryHandler {
  return () => {}
}
