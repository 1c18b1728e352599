import type { Redis } from 'ioredis'
import type { Keyspace } from '../keys.js'
import type { Log } from '../redis/connection.js'

/**
 * Listens for `expired` keyevents of one database on a dedicated connection
 * and reports the timer keys that are ours. Events are only a hint that
 * something is due; the sweeper is what guarantees delivery. The same
 * connection hears `<prefix>due`, where the scripts say that something in a
 * shard became due sooner (a new hold, a retry, a released job), so the
 * sweeper can sleep until the earliest time it knows of instead of polling.
 */
export interface ExpiredEventsOptions {
  redis: Redis
  db: number
  keys: Keyspace
  log: Log
  onExpired: (shard: number, id: string) => void
  /** Something in the shard is due at `at` (Redis server time, ms). */
  onDue: (shard: number, at: number) => void
  /** The workers changed (a message `members`): rebalance the shards now. */
  onMembers?: (() => void) | undefined
  /** Every (re)connection: the worker sweeps before trusting events again. */
  onSubscribed: () => void
}

export interface ExpiredEvents {
  /** Resolves when `key` expires, or false after timeoutMs: tells whether events arrive at all. */
  waitForKey: (key: string, timeoutMs: number) => Promise<boolean>
  /** Subscribed and the connection is up: events published now reach this worker. */
  connected: () => boolean
  /** The masters whose subscription is up now, `host:port` as this worker connects to them. */
  masters: () => string[]
  close: () => Promise<void>
}

/**
 * What a pmessage of the expired channel means, for one node or every master
 * of a cluster alike: one of our timer keys (onExpired), or a key someone
 * waits for (waitForKey, the probe whether events arrive at all).
 */
export function expiredKeyRouter (keys: Keyspace, onExpired: (shard: number, id: string) => void) {
  const waiting = new Map<string, () => void>()
  return {
    onMessage (_pattern: string, _channel: string, key: string): void {
      const parsed = keys.parseTimerKey(key)
      if (parsed) onExpired(parsed.shard, parsed.id)
      else waiting.get(key)?.()
    },
    async waitForKey (key: string, timeoutMs: number): Promise<boolean> {
      return await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => { waiting.delete(key); resolve(false) }, timeoutMs)
        timer.unref()
        waiting.set(key, () => { clearTimeout(timer); waiting.delete(key); resolve(true) })
      })
    }
  }
}

/** What a message on `<prefix>due` means: the shard and the server time something there is due, or that the workers changed. */
export function dueMessageRouter (keys: Keyspace, onDue: (shard: number, at: number) => void, onMembers?: () => void) {
  return (channel: string, message: string): void => {
    if (channel !== keys.dueChannel) return
    if (message === 'members') {
      onMembers?.()
      return
    }
    const space = message.lastIndexOf(' ')
    const shard = keys.shardOfBase(message.slice(0, space))
    const at = Number(message.slice(space + 1))
    if (shard !== undefined && Number.isFinite(at)) onDue(shard, at)
  }
}

export async function subscribeExpiredEvents (opts: ExpiredEventsOptions): Promise<ExpiredEvents> {
  const pattern = `__keyevent@${opts.db}__:expired`
  const router = expiredKeyRouter(opts.keys, opts.onExpired)
  opts.redis.on('pmessage', router.onMessage)
  opts.redis.on('message', dueMessageRouter(opts.keys, opts.onDue, opts.onMembers))
  // ioredis resubscribes by itself after a reconnect and then emits 'ready'.
  let first = true
  opts.redis.on('ready', () => {
    if (first) return
    opts.log.info({ pattern }, 'resubscribed to expired events')
    opts.onSubscribed()
  })
  await opts.redis.subscribe(opts.keys.dueChannel)
  await opts.redis.psubscribe(pattern)
  let subscribed = true
  first = false
  opts.log.info({ pattern }, 'subscribed to expired events')
  opts.onSubscribed()

  return {
    waitForKey: router.waitForKey,
    // After a reconnect ioredis sends the subscription again as its first command once 'ready': subscribed within a round trip.
    connected: () => subscribed && opts.redis.status === 'ready',
    masters: () => subscribed && opts.redis.status === 'ready'
      ? [`${opts.redis.options.host ?? '127.0.0.1'}:${opts.redis.options.port ?? 6379}`]
      : [],
    async close () {
      subscribed = false
      if (opts.redis.status === 'ready') {
        await Promise.all([opts.redis.punsubscribe(pattern), opts.redis.unsubscribe(opts.keys.dueChannel)]).catch(() => {})
      }
    }
  }
}
