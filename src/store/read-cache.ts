import { Buffer } from 'node:buffer'
import { LRUCache } from 'lru-cache'

/**
 * The in-process cache behind GET /checkout/:id (READ_CACHE=true): the
 * answer of each hold read, by order id, least recently read evicted first,
 * bounded in entries and in bytes. It only serves entries while Redis
 * tracks them for us (src/store/read-cache-tracking.ts says when) and while
 * the invalidation connection has answered a PING sent less than
 * `livenessMs` ago; no entry lives longer than `maxAgeMs` nor than its hold
 * does in Redis. An invalidation evicts the holds read through the key it
 * names, a lost connection all of them. docs/read-cache.md states the promise.
 */
export interface CachedHold {
  /**
   * The answer as JSON, cut around the time left (see cached-answer.ts):
   * `head` + ttl + `,"ttlMs":` + ttlMs + `tail` while pending; `head` alone
   * once ended, when it no longer changes with time.
   */
  head: string
  tail: string
  /** The deadline on the Redis clock (ms) while pending; undefined once ended. */
  expiresAt: number | undefined
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
  id: string
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
  /** The cached hold of order `id`, or undefined (counted as a miss, and the caller reads Redis). */
  get: (id: string) => CachedHold | undefined
  /**
   * Call before reading order `id` from Redis at `key` (the key Redis tracks,
   * or on key format 3 the shard base: any invalidation in the shard while the
   * read is in flight); undefined when the result must not be cached.
   */
  begin: (id: string, key?: string) => Ticket | undefined
  /**
   * After the read: caches `hold` (undefined: nothing to cache, e.g. not found)
   * unless invalidated meanwhile, for at most `lifeMs` (how long Redis keeps
   * the hold from now; undefined: no end set). `key` is the key whose
   * invalidation drops the entry (default: the ticket's).
   */
  end: (ticket: Ticket, hold: CachedHold | undefined, lifeMs?: number, key?: string) => void
  /** Redis says `key` changed: every hold read through it is dropped; null: everything changed (FLUSHALL, FLUSHDB). */
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

/**
 * Measured on Node 20 (V8 heap, 100,000 entries): an entry costs its
 * characters plus about this much (the entry object and its strings, the
 * lru-cache slots, the key-to-ids index with its set).
 */
const ENTRY_OVERHEAD_BYTES = 320

/** The estimated memory of one entry: the UTF-8 size of its order id, Redis key and answer, plus the objects around them. */
export function entryBytes (id: string, key: string, hold: CachedHold): number {
  return ENTRY_OVERHEAD_BYTES + Buffer.byteLength(id) + Buffer.byteLength(key) + Buffer.byteLength(hold.head) + Buffer.byteLength(hold.tail)
}

interface Entry {
  hold: CachedHold
  /** The Redis key the hold was read through: its invalidation drops the entry. */
  key: string
}

export function createReadCache (opts: ReadCacheOptions): ReadCache {
  const { maxAgeMs, metrics } = opts
  const livenessMs = Math.min(maxAgeMs, MAX_LIVENESS_MS)
  // The order ids read through each Redis key (one per key in formats 1 and 2; format 3
  // packs several holds into one bucket, whose invalidation drops them together).
  const idsOfKey = new Map<string, Set<string>>()
  const unindex = (id: string, key: string) => {
    const ids = idsOfKey.get(key)
    if (ids === undefined) return
    ids.delete(id)
    if (ids.size === 0) idsOfKey.delete(key)
  }
  const entries = new LRUCache<string, Entry>({
    max: opts.maxEntries,
    maxSize: opts.maxBytes,
    sizeCalculation: (entry, id) => entryBytes(id, entry.key, entry.hold),
    // Every way out of the cache (evicted, aged out, deleted, replaced, cleared) leaves the index too.
    dispose: (entry, id) => unindex(id, entry.key),
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
    idsOfKey.clear()
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
    get (id) {
      // A lapsed entry is dropped by the get itself.
      const entry = live() ? entries.get(id) : undefined
      if (entry === undefined) {
        report()
        metrics?.miss()
        return undefined
      }
      metrics?.hit()
      return entry.hold
    },
    begin (id, key = id) {
      if (!tracking) return undefined
      const f = inFlight.get(key)
      if (f) f.reads++
      else inFlight.set(key, { reads: 1, invalidated: false })
      return { id, key, epoch, startedAt: performance.now() }
    },
    end (ticket, hold, lifeMs, key = ticket.key) {
      const f = inFlight.get(ticket.key)
      if (!f) return
      const invalidated = f.invalidated
      if (--f.reads === 0) inFlight.delete(ticket.key)
      if (hold === undefined || invalidated || !tracking || ticket.epoch !== epoch) return
      // lru-cache takes a ttl of 0 as "never expires": an entry with no time left is not cached.
      const ttl = Math.floor(Math.min(maxAgeMs - (performance.now() - ticket.startedAt), lifeMs ?? Infinity))
      if (ttl < 1) return
      entries.set(ticket.id, { hold, key }, { ttl })
      let ids = idsOfKey.get(key)
      if (ids === undefined) idsOfKey.set(key, ids = new Set())
      ids.add(ticket.id)
      report()
    },
    invalidate (key) {
      if (key === null) {
        flush(true)
        return
      }
      const f = inFlight.get(key)
      if (f) f.invalidated = true
      const ids = idsOfKey.get(key)
      if (ids !== undefined) for (const id of [...ids]) entries.delete(id)
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
