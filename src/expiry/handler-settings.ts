import type { Config } from '../config.js'
import { createKeyspace } from '../keys.js'
import type { RedisClient } from '../redis/connection.js'
import type { BuiltInSettings } from './handlers.js'

/** What the built-in handlers are configured with, from the configuration: the worker's and the serverless sweep's. */
export function builtInSettings (config: Config, redis: RedisClient): BuiltInSettings {
  return {
    webhook: { url: config.WEBHOOK_URL, secret: config.WEBHOOK_SECRET, timeoutMs: config.WEBHOOK_TIMEOUT_MS },
    // Only tells that EVENT_STREAM is on: the stream handler writes nothing (src/expiry/handlers/stream.ts).
    stream: config.EVENT_STREAM
      ? { redis, key: createKeyspace(config.KEY_PREFIX, config.KEY_SHARDS).events, maxLen: config.EVENT_STREAM_MAXLEN }
      : undefined
  }
}
