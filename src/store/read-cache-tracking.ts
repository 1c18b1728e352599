import type { Redis } from 'ioredis'
import type { Log } from '../redis/connection.js'
import type { ReadCache } from './read-cache.js'
import { watchLiveness } from './read-cache-liveness.js'
import { invalidationTargets } from './read-cache-packed.js'

/** The channel Redis publishes invalidations on for clients that REDIRECT them (RESP2). */
export const INVALIDATE_CHANNEL = '__redis__:invalidate'

/** How Redis is asked to track: `args` after `CLIENT TRACKING ON REDIRECT <id>`, `key` naming them. */
export interface TrackingMode {
  args: string[]
  key: string
}

export interface Tracking {
  /** Turns tracking off and on again with the mode asked for now (the cache is flushed meanwhile). */
  retrack: () => void
  /** The key of the mode tracking is on with; undefined while it is off. */
  readonly onFor: string | undefined
  stop: () => void
}

export interface TrackedReads {
  /** Where cached reads run: Redis tracks every key read on it. */
  reader: Redis
  /** Subscribed to the invalidations of the reader's keys. */
  invalidations: Redis
}

/**
 * Keeps Redis server-assisted client-side caching on for `reader`:
 * `CLIENT TRACKING ON REDIRECT <id of invalidations>`, with `invalidations`
 * subscribed to `__redis__:invalidate`. Tracking belongs to one connection
 * and the redirect names one client id, so a reconnect of either loses it:
 * the cache is flushed and caches nothing on every close of either, and
 * tracking is set up again once both are ready. A connection that stays
 * open but no longer answers (a partition with no RST) is caught by the
 * PINGs of read-cache-liveness.ts: hits stop when none has been answered
 * for a second (less with a shorter max age). `modeOf` gives the tracking
 * arguments (none: the keys the reader reads; `BCAST PREFIX …` for key
 * format 3, see read-cache-packed.ts); `retrack` applies a new one.
 */
export function keepTracking (
  conns: TrackedReads, cache: ReadCache, log?: Log, modeOf: () => TrackingMode = () => ({ args: [], key: '' })
): Tracking {
  const { reader, invalidations } = conns
  let onFor: string | undefined
  // Subscribed again below, after CLIENT ID: a connection in subscriber mode takes no other command.
  invalidations.options.autoResubscribe = false
  let attempt = 0
  // The client id of `invalidations` while it is subscribed: a reconnect of the
  // reader alone needs it again, and a subscribed connection cannot ask.
  let redirect: string | undefined
  let invalidationsSession = 0

  // One subscription at a time: a second CLIENT ID sent after SUBSCRIBE would be refused.
  let subscribing: Promise<string> | undefined
  const subscribeOnce = async (): Promise<string> => {
    const session = invalidationsSession
    const id = String(await invalidations.client('ID'))
    await invalidations.subscribe(INVALIDATE_CHANNEL)
    // An id from before a reconnect names a client that is gone: tracking redirected to it would deliver nothing.
    if (session !== invalidationsSession) throw new Error('the invalidation connection reconnected while subscribing')
    redirect = id
    return id
  }
  const subscribe = async (): Promise<string> => {
    if (redirect !== undefined) return redirect
    if (subscribing === undefined) {
      const mine: Promise<string> = subscribeOnce().finally(() => { if (subscribing === mine) subscribing = undefined })
      subscribing = mine
    }
    return await subscribing
  }
  const liveness = watchLiveness(invalidations, cache, log)

  const setUp = async (mine: number) => {
    const id = await subscribe()
    if (mine !== attempt) return
    const mode = modeOf()
    // Off first: a connection cannot switch between BCAST and key tracking while on.
    await reader.client('TRACKING', 'OFF')
    await reader.client('TRACKING', 'ON', 'REDIRECT', id, ...mode.args)
    if (mine !== attempt) return
    // On once the invalidation connection has answered a PING sent after TRACKING ON,
    // so hits can start at once rather than at the next beat.
    const sentAt = await liveness.ping()
    if (mine !== attempt || sentAt === undefined) return
    cache.setTracking(true)
    onFor = mode.key
    liveness.confirm(sentAt)
    log?.info({ redirect: id, bcast: mode.args.includes('BCAST') }, 'read cache: tracking on')
  }
  const tryUp = () => {
    if (reader.status !== 'ready' || invalidations.status !== 'ready') return
    const mine = ++attempt
    setUp(mine).catch((err: unknown) => {
      if (mine !== attempt) return
      // Left off until the next reconnect of either connection: reads go to Redis uncached meanwhile.
      log?.warn({ err }, 'read cache: could not turn tracking on; serving uncached')
    })
  }
  const down = () => {
    attempt++
    onFor = undefined
    if (cache.tracking) log?.warn('read cache: a tracking connection closed; cache flushed')
    cache.setTracking(false)
  }
  const onMessage = (channel: Buffer, message: Buffer | Buffer[] | null) => {
    if (channel.toString() !== INVALIDATE_CHANNEL) return
    // RESP2 sends the keys as an array; null means all keys (FLUSHALL, FLUSHDB).
    if (message === null) cache.invalidate(null)
    else for (const key of Array.isArray(message) ? message : [message]) for (const k of invalidationTargets(key.toString())) cache.invalidate(k)
  }

  const invalidationsDown = () => {
    invalidationsSession++
    redirect = undefined
    subscribing = undefined
  }
  for (const conn of [reader, invalidations]) {
    conn.on('ready', tryUp)
    conn.on('close', down)
  }
  invalidations.on('close', invalidationsDown)
  invalidations.on('messageBuffer', onMessage)
  tryUp()
  const stop = () => {
    for (const conn of [reader, invalidations]) {
      conn.off('ready', tryUp)
      conn.off('close', down)
    }
    invalidations.off('messageBuffer', onMessage)
    invalidations.off('close', invalidationsDown)
    liveness.stop()
    attempt++
    onFor = undefined
    cache.setTracking(false)
  }
  const retrack = () => {
    attempt++
    onFor = undefined
    if (cache.tracking) cache.setTracking(false)
    tryUp()
  }
  return { retrack, stop, get onFor () { return onFor } }
}
