/**
 * Key naming. Every key of one order lives under the hash tag of its shard,
 * `<prefix>{<shard>}:`, together with that shard's deadline index and job queue,
 * so each script touches a single Redis Cluster slot. See docs/keys.md.
 */
export const ORDER_ID_PATTERN = '^[A-Za-z0-9._:-]{1,128}$'

export interface Keyspace {
  readonly prefix: string
  readonly shards: number
  shardOf: (id: string) => number
  /** `<prefix>{<shard>}:`: the base every key of the shard starts with. */
  base: (shard: number) => string
  order: (id: string) => OrderKeys
  shard: (shard: number) => ShardKeys
  /** STREAM of lifecycle events for consumers (docs/events.md); one key, outside every shard. */
  events: string
  /** Order id of a timer key, or undefined for a key that is not one of ours. */
  parseTimerKey: (key: string) => { id: string, shard: number } | undefined
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
  /** ZSET of the workers active in this shard: member worker token, score when its heartbeat lapses (ms). */
  workers: string
  /** SET of the job members one worker holds in this shard. */
  held: (token: string) => string
  /** STRING counter: the last generation issued in this shard; never expires, so generations are never reused. */
  holds: string
  /** STREAM of lifecycle events written by the shard's scripts, waiting for the relay to copy them to `events`. */
  outbox: string
  /** STRING naming the relay that moves this shard's outbox now (`SET NX PX`), so two relays never move it at once. */
  relayLock: string
}

export interface OrderKeys extends ShardKeys {
  id: string
  shard: number
  /** HASH with the order's current generation: status, deadline, payload, outcome. */
  order: string
  /** STRING with the hold's TTL; its expiry is the keyspace event the worker listens for. */
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

export function createKeyspace (prefix: string, shards: number): Keyspace {
  const base = (shard: number) => `${prefix}{${shard}}:`
  const shardKeys = (shard: number): ShardKeys => {
    const b = base(shard)
    return {
      base: b,
      deadlines: `${b}deadlines`,
      jobs: `${b}jobs`,
      dead: `${b}dead`,
      job: (member) => `${b}job:${member}`,
      claimRecord: (token) => `${b}claim:${token}`,
      workers: `${b}workers`,
      held: (token) => `${b}held:${token}`,
      holds: `${b}holds`,
      outbox: `${b}outbox`,
      relayLock: `${b}relay`
    }
  }
  const shardOf = (id: string) => fnv1a(id) % shards
  const timerKey = new RegExp(`^${prefix.replace(/[.]/g, '\\.')}\\{(\\d+)\\}:timer:(.+)$`)
  return {
    prefix,
    shards,
    shardOf,
    base,
    shard: shardKeys,
    events: `${prefix}events`,
    order (id) {
      const shard = shardOf(id)
      const keys = shardKeys(shard)
      return { ...keys, id, shard, order: `${keys.base}order:${id}`, timer: `${keys.base}timer:${id}` }
    },
    parseTimerKey (key) {
      const match = timerKey.exec(key)
      if (!match) return undefined
      const shard = Number(match[1])
      const id = match[2] as string
      if (shard >= shards || shardOf(id) !== shard) return undefined
      return { id, shard }
    }
  }
}
