import type { Redis } from 'ioredis'
import type { Keyspace } from '../keys.js'
import type { Log } from '../redis/connection.js'

/**
 * Listens for `expired` keyevents of one database on a dedicated connection
 * and reports the timer keys that are ours. Events are only a hint that
 * something is due; the sweeper is what guarantees delivery.
 */
export interface ExpiredEventsOptions {
  redis: Redis
  db: number
  keys: Keyspace
  log: Log
  onExpired: (shard: number, id: string) => void
  /** Every (re)connection: the worker sweeps before trusting events again. */
  onSubscribed: () => void
}

export interface ExpiredEvents {
  /** Resolves when `key` expires, or false after timeoutMs: tells whether events arrive at all. */
  waitForKey: (key: string, timeoutMs: number) => Promise<boolean>
  /** Subscribed and the connection is up: events published now reach this worker. */
  connected: () => boolean
  close: () => Promise<void>
}

export async function subscribeExpiredEvents (opts: ExpiredEventsOptions): Promise<ExpiredEvents> {
  const pattern = `__keyevent@${opts.db}__:expired`
  const waiting = new Map<string, () => void>()

  opts.redis.on('pmessage', (_pattern: string, _channel: string, key: string) => {
    const parsed = opts.keys.parseTimerKey(key)
    if (parsed) {
      opts.onExpired(parsed.shard, parsed.id)
      return
    }
    waiting.get(key)?.()
  })
  // ioredis resubscribes by itself after a reconnect and then emits 'ready'.
  let first = true
  opts.redis.on('ready', () => {
    if (first) return
    opts.log.info({ pattern }, 'resubscribed to expired events')
    opts.onSubscribed()
  })
  await opts.redis.psubscribe(pattern)
  let subscribed = true
  first = false
  opts.log.info({ pattern }, 'subscribed to expired events')
  opts.onSubscribed()

  return {
    async waitForKey (key, timeoutMs) {
      return await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => { waiting.delete(key); resolve(false) }, timeoutMs)
        timer.unref()
        waiting.set(key, () => { clearTimeout(timer); waiting.delete(key); resolve(true) })
      })
    },
    // After a reconnect ioredis sends the subscription again as its first command once 'ready': subscribed within a round trip.
    connected: () => subscribed && opts.redis.status === 'ready',
    async close () {
      subscribed = false
      if (opts.redis.status === 'ready') await opts.redis.punsubscribe(pattern).catch(() => {})
    }
  }
}
