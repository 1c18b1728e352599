/**
 * The in-process cache behind GET /checkout/:id (READ_CACHE=true): order
 * hashes as Redis returned them, least recently read evicted first. It only
 * holds entries while Redis tracks them for us (src/store/read-cache-tracking.ts
 * says when); an invalidation evicts one key, a lost connection all of them.
 * No view is cached: a hit recomputes the view from the stored fields and
 * the Redis clock, exactly as a miss would.
 */
export interface CachedHold {
  /** The order hash (fields in docs/keys.md). */
  fields: Record<string, string>
  /** Redis clock minus the local clock when the entry was read (ms). */
  clockOffsetMs: number
}

export interface ReadCacheMetrics {
  hit: () => void
  miss: () => void
  flush: () => void
  entries: (count: number) => void
}

/** A read in flight: its result may be cached only if nothing invalidated its key meanwhile. */
export interface Ticket {
  key: string
  epoch: number
}

export interface ReadCache {
  /** True while Redis tracks the reads (tracking on, invalidation connection subscribed). */
  readonly tracking: boolean
  readonly size: number
  /** The cached hold, or undefined (counted as a miss, and the caller reads Redis). */
  get: (key: string) => CachedHold | undefined
  /** Call before reading `key` from Redis; undefined when the result must not be cached. */
  begin: (key: string) => Ticket | undefined
  /** After the read: caches `hold` (undefined: nothing to cache, e.g. not found) unless invalidated meanwhile. */
  end: (ticket: Ticket, hold: CachedHold | undefined) => void
  /** Redis says `key` changed; null: everything changed (FLUSHALL, FLUSHDB). */
  invalidate: (key: string | null) => void
  /** Drop everything and stop caching until tracking is on again (`on` true). */
  setTracking: (on: boolean) => void
}

export function createReadCache (maxEntries: number, metrics?: ReadCacheMetrics): ReadCache {
  // A Map iterates in insertion order: re-inserting on each hit makes the first key the least recently read.
  const entries = new Map<string, CachedHold>()
  // Keys with a read in flight: how many reads, and whether an invalidation came while they ran.
  const inFlight = new Map<string, { reads: number, invalidated: boolean }>()
  let tracking = false
  // Grows on every flush, so a read that started before one is never cached.
  let epoch = 0

  const flush = (counted: boolean) => {
    epoch++
    for (const f of inFlight.values()) f.invalidated = true
    if (entries.size > 0) {
      entries.clear()
      metrics?.entries(0)
    }
    if (counted) metrics?.flush()
  }

  return {
    get tracking () { return tracking },
    get size () { return entries.size },
    get (key) {
      const hold = tracking ? entries.get(key) : undefined
      if (hold === undefined) {
        metrics?.miss()
        return undefined
      }
      entries.delete(key)
      entries.set(key, hold)
      metrics?.hit()
      return hold
    },
    begin (key) {
      if (!tracking) return undefined
      const f = inFlight.get(key)
      if (f) f.reads++
      else inFlight.set(key, { reads: 1, invalidated: false })
      return { key, epoch }
    },
    end (ticket, hold) {
      const f = inFlight.get(ticket.key)
      if (!f) return
      const invalidated = f.invalidated
      if (--f.reads === 0) inFlight.delete(ticket.key)
      if (hold === undefined || invalidated || !tracking || ticket.epoch !== epoch) return
      entries.delete(ticket.key)
      entries.set(ticket.key, hold)
      if (entries.size > maxEntries) {
        const oldest = entries.keys().next().value
        if (oldest !== undefined) entries.delete(oldest)
      }
      metrics?.entries(entries.size)
    },
    invalidate (key) {
      if (key === null) {
        flush(true)
        return
      }
      const f = inFlight.get(key)
      if (f) f.invalidated = true
      if (entries.delete(key)) metrics?.entries(entries.size)
    },
    setTracking (on) {
      // Any change of the tracking state loses what was cached: entries read
      // before it may have missed their invalidation.
      flush(!on)
      tracking = on
    }
  }
}
