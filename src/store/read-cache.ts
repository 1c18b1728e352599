import { Buffer } from 'node:buffer'
import { LRUCache } from 'lru-cache'

/**
 * The in-process cache behind GET /checkout/:id (READ_CACHE=true): order
 * hashes as Redis returned them, least recently read evicted first, bounded
 * in entries and in bytes. It only serves entries while Redis tracks them
 * for us (src/store/read-cache-tracking.ts says when) and while the
 * invalidation connection has answered a PING sent less than `livenessMs`
 * ago; no entry lives longer than `maxAgeMs` nor than its hold does in
 * Redis. An invalidation evicts one key, a lost connection all of them.
 * No view is cached: a hit recomputes the view from the stored fields and
 * the Redis clock, exactly as a miss would. docs/read-cache.md states the
 * promise.
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

export interface ReadCacheOptions {
  /** READ_CACHE_MAX_ENTRIES */
  maxEntries: number
  /** READ_CACHE_MAX_BYTES: the estimated size of every entry together (entryBytes). */
  maxBytes: number
  /** READ_CACHE_MAX_AGE_MS: how old, measured from the start of its read, an entry may be served. */
  maxAgeMs: number
  metrics?: ReadCacheMetrics | undefined
}

/** A read in flight: its result may be cached only if nothing invalidated its key meanwhile. */
export interface Ticket {
  key: string
  epoch: number
  /** performance.now() when the read was sent: the entry's age counts from here. */
  startedAt: number
}

export interface ReadCache {
  /** True while Redis tracks the reads (tracking on, invalidation connection subscribed). */
  readonly tracking: boolean
  readonly size: number
  /** The estimated size of the entries (entryBytes), at most READ_CACHE_MAX_BYTES. */
  readonly bytes: number
  readonly maxAgeMs: number
  /** Hits are served only while a PING answered on the invalidation connection was sent less than this long ago. */
  readonly livenessMs: number
  /** The cached hold, or undefined (counted as a miss, and the caller reads Redis). */
  get: (key: string) => CachedHold | undefined
  /** Call before reading `key` from Redis; undefined when the result must not be cached. */
  begin: (key: string) => Ticket | undefined
  /**
   * After the read: caches `hold` (undefined: nothing to cache, e.g. not found)
   * unless invalidated meanwhile, for at most `lifeMs` (how long Redis keeps
   * the hold from now; undefined: no end set).
   */
  end: (ticket: Ticket, hold: CachedHold | undefined, lifeMs?: number) => void
  /** Redis says `key` changed; null: everything changed (FLUSHALL, FLUSHDB). */
  invalidate: (key: string | null) => void
  /** Drop everything and stop caching until tracking is on again (`on` true). */
  setTracking: (on: boolean) => void
  /**
   * The invalidation connection answered a PING sent at `sentAt`
   * (performance.now()): every invalidation Redis sent before it has been
   * applied. Hits are served only while the last such PING is younger than livenessMs.
   */
  confirm: (sentAt: number) => void
}

/**
 * The longest a hit may rest on an unproven invalidation connection, whatever
 * the max age: a longer READ_CACHE_MAX_AGE_MS buys hits, not a longer blind spot.
 */
export const MAX_LIVENESS_MS = 1000

/** Measured on Node 20 (V8 heap, lru-cache slots included): an entry costs its characters plus about this much. */
const ENTRY_OVERHEAD_BYTES = 96
const FIELD_OVERHEAD_BYTES = 48

/** The estimated memory of one entry: the UTF-8 size of its key, field names and values, plus the objects around them. */
export function entryBytes (key: string, hold: CachedHold): number {
  let bytes = ENTRY_OVERHEAD_BYTES + Buffer.byteLength(key)
  for (const name in hold.fields) bytes += FIELD_OVERHEAD_BYTES + Buffer.byteLength(name) + Buffer.byteLength(hold.fields[name]!)
  return bytes
}

export function createReadCache (opts: ReadCacheOptions): ReadCache {
  const { maxAgeMs, metrics } = opts
  const livenessMs = Math.min(maxAgeMs, MAX_LIVENESS_MS)
  const entries = new LRUCache<string, CachedHold>({
    max: opts.maxEntries,
    maxSize: opts.maxBytes,
    sizeCalculation: (hold, key) => entryBytes(key, hold),
    ttl: maxAgeMs,
    // An entry's age counts from its read on Redis, never from its last hit.
    updateAgeOnGet: false,
    allowStale: false,
    // Read the clock on every check rather than a copy up to 1 ms old: the bound is exact.
    ttlResolution: 0
  })
  // Keys with a read in flight: how many reads, and whether an invalidation came while they ran.
  const inFlight = new Map<string, { reads: number, invalidated: boolean }>()
  let tracking = false
  // Grows on every flush, so a read that started before one is never cached.
  let epoch = 0
  // Send time of the last PING answered on the invalidation connection; undefined: none since the last flush.
  let confirmedAt: number | undefined
  let reported = 0

  const report = () => {
    if (entries.size !== reported) metrics?.entries(reported = entries.size)
  }
  const flush = (counted: boolean) => {
    epoch++
    confirmedAt = undefined
    for (const f of inFlight.values()) f.invalidated = true
    entries.clear()
    report()
    if (counted) metrics?.flush()
  }
  const live = () => tracking && confirmedAt !== undefined && performance.now() - confirmedAt <= livenessMs

  return {
    get tracking () { return tracking },
    get size () { return entries.size },
    get bytes () { return entries.calculatedSize },
    maxAgeMs,
    livenessMs,
    get (key) {
      // A lapsed entry is dropped by the get itself.
      const hold = live() ? entries.get(key) : undefined
      report()
      if (hold === undefined) {
        metrics?.miss()
        return undefined
      }
      metrics?.hit()
      return hold
    },
    begin (key) {
      if (!tracking) return undefined
      const f = inFlight.get(key)
      if (f) f.reads++
      else inFlight.set(key, { reads: 1, invalidated: false })
      return { key, epoch, startedAt: performance.now() }
    },
    end (ticket, hold, lifeMs) {
      const f = inFlight.get(ticket.key)
      if (!f) return
      const invalidated = f.invalidated
      if (--f.reads === 0) inFlight.delete(ticket.key)
      if (hold === undefined || invalidated || !tracking || ticket.epoch !== epoch) return
      // lru-cache takes a ttl of 0 as "never expires": an entry with no time left is not cached.
      const ttl = Math.floor(Math.min(maxAgeMs - (performance.now() - ticket.startedAt), lifeMs ?? Infinity))
      if (ttl < 1) return
      entries.set(ticket.key, hold, { ttl })
      report()
    },
    invalidate (key) {
      if (key === null) {
        flush(true)
        return
      }
      const f = inFlight.get(key)
      if (f) f.invalidated = true
      entries.delete(key)
      report()
    },
    setTracking (on) {
      // Any change of the tracking state loses what was cached: entries read
      // before it may have missed their invalidation.
      flush(!on)
      tracking = on
    },
    confirm (sentAt) {
      if (confirmedAt === undefined || sentAt > confirmedAt) confirmedAt = sentAt
    }
  }
}
