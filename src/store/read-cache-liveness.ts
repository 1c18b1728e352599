import type { Redis } from 'ioredis'
import type { Log } from '../redis/connection.js'
import type { ReadCache } from './read-cache.js'

export interface Liveness {
  /** Sends a PING; resolves with its send time once answered, or undefined when the connection was replaced meanwhile. */
  ping: () => Promise<number | undefined>
  /** Tells the cache that every invalidation sent before `sentAt` has been applied. */
  confirm: (sentAt: number | undefined) => void
  stop: () => void
}

/**
 * Proves the invalidation connection alive: Redis answers a PING on it after
 * every invalidation it queued before, so the answer confirms the cache up to
 * the PING's send time (ReadCache.confirm), and hits stop once no PING sent
 * within `livenessMs` has been answered: a connection that stays open but
 * carries nothing (a partition with no RST) is caught within that bound.
 * A PING every quarter of it, one at a time; one unanswered for that long
 * is given up and the next one sent.
 */
export function watchLiveness (invalidations: Redis, cache: ReadCache, log?: Log): Liveness {
  let sentLast: number | undefined
  let silent = false
  let session = 0
  const closed = () => { session++ }
  invalidations.on('close', closed)

  const ping = async (): Promise<number | undefined> => {
    const sentAt = performance.now()
    sentLast = sentAt
    const mine = session
    try {
      await invalidations.ping()
      // An answer from before a reconnect says nothing about the new connection.
      return mine === session ? sentAt : undefined
    } finally {
      if (sentLast === sentAt) sentLast = undefined
    }
  }
  const confirm = (sentAt: number | undefined) => {
    if (sentAt === undefined || !cache.tracking) return
    cache.confirm(sentAt)
    if (silent) log?.info('read cache: the invalidation connection answers again; serving hits')
    silent = false
  }
  const beat = () => {
    if (!cache.tracking || invalidations.status !== 'ready') return
    if (sentLast !== undefined) {
      if (performance.now() - sentLast < cache.livenessMs) return
      if (!silent) log?.warn({ livenessMs: cache.livenessMs }, 'read cache: the invalidation connection has not answered a PING; serving uncached')
      silent = true
    }
    ping().then(confirm, () => {})
  }
  const beats = setInterval(beat, Math.max(10, Math.floor(cache.livenessMs / 4)))
  beats.unref()
  return {
    ping,
    confirm,
    stop: () => {
      clearInterval(beats)
      invalidations.off('close', closed)
    }
  }
}
