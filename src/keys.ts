import { randomBytes } from 'node:crypto'
import { balancedTag } from './shard-tags.js'

/**
 * Key naming. Every key of one order lives under the hash tag of its shard,
 * `<prefix>{<tag>}:`, together with that shard's deadline index and job queue,
 * so each script touches a single Redis Cluster slot. See docs/keys.md.
 *
 * Key formats (recorded per prefix in `<prefix>layout`, src/store/layout.ts):
 * - 1: the tag is the shard number, `{0}`..`{S-1}`;
 * - 2: the tag is `{<n>.<k>}`, chosen so the shards spread evenly over the
 *   masters of a cluster (src/shard-tags.ts).
 * - 3: the tags of format 2, and pending holds packed into small listpack
 *   buckets per shard with a two-level deadline index (docs/keys.md,
 *   src/store/scripts/includes/packed.lua): no key per pending hold.
 */
export type KeyFormat = 1 | 2 | 3
export const KEY_FORMATS: readonly KeyFormat[] = [1, 2, 3]

/**
 * The listpack limits of the Redis that holds the data (its
 * `hash-max-listpack-*` and `zset-max-listpack-*` settings): format 3 keeps
 * every bucket within them, because a hash or sorted set converted to a
 * hashtable or skiplist never converts back. `fingerprintChars` is the
 * length of a hold's field in its bucket (hex digits of a hash of its id).
 */
export interface Packing {
  hashEntries: number
  hashValue: number
  zsetEntries: number
  zsetValue: number
  fingerprintChars: number
}

/** Redis 7's defaults: what format 3 assumes when the server's settings cannot be read. */
export const DEFAULT_PACKING: Packing = { hashEntries: 128, hashValue: 64, zsetEntries: 128, zsetValue: 64, fingerprintChars: 4 }

/** The packing as the format 3 scripts take it: one ARGV, numbers separated by spaces. */
export const packingArg = (p: Packing): string =>
  `${p.hashEntries} ${p.hashValue} ${p.zsetEntries} ${p.zsetValue} ${p.fingerprintChars}`

// `.` and `..` are path segments: a hold under them could not be reached by URL.
export const ORDER_ID_PATTERN = '^(?!\\.\\.?$)[A-Za-z0-9._:-]{1,128}$'

export interface Keyspace {
  readonly prefix: string
  readonly shards: number
  /** How shard tags are written and (format 3) how pending holds are stored; fixed for the life of the data under the prefix. */
  readonly format: KeyFormat
  /** Format 3: the listpack limits its buckets stay within. */
  readonly packing: Packing
  /**
   * Random id of the data under this prefix on this Redis, recorded in the
   * layout record; generations restart with a new prefix or a new Redis,
   * the epoch does not come back with them.
   */
  readonly epoch: string
  /** The handler's idempotencyKey for one expiry: `<id>:<epoch>:<generation>` (docs/delivery.md). */
  idempotencyKey: (id: string, generation: number) => string
  /** The hash tag of each shard, without braces. */
  readonly tags: readonly string[]
  shardOf: (id: string) => number
  /** `<prefix>{<tag>}:`: the base every key of the shard starts with. */
  base: (shard: number) => string
  order: (id: string) => OrderKeys
  shard: (shard: number) => ShardKeys
  /** STREAM of lifecycle events for consumers (docs/events.md); one key, outside every shard. */
  events: string
  /** STRING the API's readiness check writes (`SET PX`): a Redis that refuses writes (memory full, a failed snapshot) is not ready. */
  readyProbe: string
  /**
   * Pub/sub channel on which scripts tell the workers that something is due
   * sooner (message `<base> <due ms>`) or that the workers changed
   * (message `members`).
   */
  dueChannel: string
  /**
   * ZSET of the workers of this layout: live ones with their beat number,
   * gone ones with a negative score (includes/members.lua). One key outside
   * every shard, named by format: during a migration each layout's workers
   * share out its shards.
   */
  members: string
  /** The shard whose base (`<prefix>{<tag>}:`) this is, or undefined. */
  shardOfBase: (base: string) => number | undefined
  /**
   * Order id of a timer key, or undefined for a key that is not one of ours.
   * Format 3 has one timer key per shard (`<base>timer`): its id is ''.
   */
  parseTimerKey: (key: string) => { id: string, shard: number } | undefined
  /**
   * Set while the prefix migrates from format 1 or 2 to format 3
   * (docs/keys.md "Migrating to format 3"): the old layout, still read and
   * drained, and which of the two takes new holds now.
   */
  readonly migration?: Migration
}

export interface Migration {
  /** The old layout: same prefix and shards, its own format and epoch. */
  readonly legacy: Keyspace
  /** Where new holds go: the old layout while every process learns of the switch ('dual-read'), then format 3. */
  readonly writes: 'legacy' | 'new'
}

export interface ShardKeys {
  base: string
  /** ZSET of pending holds: member order id, score deadline (ms). */
  deadlines: string
  /** ZSET of expiry jobs: member `<generation>:<id>`, score when it is next due (ms). */
  jobs: string
  /** ZSET of jobs that used up their attempts: member `<generation>:<id>`, score when they died. */
  dead: string
  /** HASH with what an expiry job's handler needs; member is `<generation>:<id>`. */
  job: (member: string) => string
  /** HASH with the last claim of one worker in this shard, so a resent claim is idempotent. */
  claimRecord: (token: string) => string
  /**
   * STRING naming the worker that owns the shard in this layout and its
   * epoch, `<epoch>:<token>` (own-3.lua); only the owner claims here. Named
   * by format, as formats 2 and 3 share shard bases during a migration.
   */
  owner: string
  /** SET of the job members one worker holds in this shard. */
  held: (token: string) => string
  /** STRING counter: the last generation issued in this shard; never expires, so generations are never reused. */
  holds: string
  /** STREAM of lifecycle events written by the shard's scripts, waiting for the relay to copy them to `events`. */
  outbox: string
  /** STRING naming the relay that moves this shard's outbox now (`SET NX PX`), so two relays never move it at once. */
  relayLock: string
  /** Format 3: HASH with the shard's bucket table (linear hashing level `l`, split pointer `s`, pending holds `n`, index buckets made `ic`). */
  table: string
  /** Format 3: ZSET of the deadline index buckets: member bucket number, score its lowest deadline bound. */
  index: string
  /** Format 3: STRING set to expire at the shard's earliest deadline (+ grace): its `expired` event is the worker's second trigger. */
  shardTimer: string
}

export interface OrderKeys extends ShardKeys {
  id: string
  shard: number
  /** HASH with the order's current generation: status, deadline, payload, outcome. */
  order: string
  /** Formats 1 and 2: STRING with the hold's TTL; its expiry is the keyspace event the worker listens for. */
  timer: string
}

/** FNV-1a: stable across processes and releases; only its value mod shards matters. */
function fnv1a (text: string): number {
  let hash = 0x811c9dc5
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i)
    hash = Math.imul(hash, 0x01000193)
  }
  return hash >>> 0
}

/** A new epoch: 64 random bits, so two prefixes or two Redis instances never draw the same one. */
export function newEpoch (): string {
  return randomBytes(8).toString('hex')
}

/**
 * The key names of one prefix. Format 1 is the default for callers that do
 * not read the recorded layout; processes that do open their keyspace with
 * openKeyspace (src/store/layout.ts), which follows the record (format and
 * epoch). A keyspace made without the record gets an epoch of its own: its
 * idempotency keys are still never reused, but only the recorded epoch
 * keeps them the same across processes.
 */
export function createKeyspace (
  prefix: string, shards: number, format: KeyFormat = 1, epoch: string = newEpoch(), packing: Packing = DEFAULT_PACKING
): Keyspace {
  const tags = Array.from({ length: shards }, (_v, shard) => format === 1 ? String(shard) : balancedTag(shard, shards))
  const shardOfTag = new Map(tags.map((tag, shard) => [tag, shard]))
  const base = (shard: number) => `${prefix}{${tags[shard] ?? String(shard)}}:`
  const shardOfBase = new Map(tags.map((_tag, shard) => [base(shard), shard]))
  const shardKeys = (shard: number): ShardKeys => {
    const b = base(shard)
    return {
      base: b,
      deadlines: `${b}deadlines`,
      jobs: `${b}jobs`,
      dead: `${b}dead`,
      job: (member) => `${b}job:${member}`,
      claimRecord: (token) => `${b}claim:${token}`,
      owner: `${b}owner:${format}`,
      held: (token) => `${b}held:${token}`,
      holds: `${b}holds`,
      outbox: `${b}outbox`,
      relayLock: `${b}relay`,
      table: `${b}table`,
      index: `${b}index`,
      shardTimer: `${b}timer`
    }
  }
  const shardOf = (id: string) => fnv1a(id) % shards
  const timerKey = new RegExp(`^${prefix.replace(/[.]/g, '\\.')}\\{([0-9.]+)\\}:timer:(.+)$`)
  return {
    prefix,
    shards,
    format,
    packing,
    epoch,
    idempotencyKey: (id, generation) => `${id}:${epoch}:${generation}`,
    tags,
    shardOf,
    base,
    shard: shardKeys,
    events: `${prefix}events`,
    dueChannel: `${prefix}due`,
    members: `${prefix}{workers}:members:${format}`,
    readyProbe: `${prefix}ready`,
    shardOfBase: (b) => shardOfBase.get(b),
    order (id) {
      const shard = shardOf(id)
      const keys = shardKeys(shard)
      return { ...keys, id, shard, order: `${keys.base}order:${id}`, timer: `${keys.base}timer:${id}` }
    },
    parseTimerKey (key) {
      if (format === 3) {
        const shard = key.endsWith(':timer') ? shardOfBase.get(key.slice(0, -'timer'.length)) : undefined
        return shard === undefined ? undefined : { id: '', shard }
      }
      const match = timerKey.exec(key)
      if (!match) return undefined
      const shard = shardOfTag.get(match[1] as string)
      const id = match[2] as string
      if (shard === undefined || shardOf(id) !== shard) return undefined
      return { id, shard }
    }
  }
}
