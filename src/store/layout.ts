import { createKeyspace, DEFAULT_PACKING, KEY_FORMATS, type KeyFormat, type Keyspace, type Packing } from '../keys.js'
import type { Log, RedisClient } from '../redis/connection.js'
import { defineScripts, runScript } from './scripts.js'

/**
 * The key layout is fixed for the life of the data: an API and a worker that
 * disagree on KEY_SHARDS write and read different keys, and every expiry is
 * lost without a word. The first process to start records the layout in
 * Redis; every later one compares and refuses to start on a mismatch.
 *
 * The record also names the key format (src/keys.ts). A new format applies
 * to new prefixes only: data recorded with format 1 keeps its tags for its
 * whole life, and a process whose keys use another format than the record
 * refuses to start rather than read and write keys nobody else uses.
 *
 * And it holds the epoch, a random id of the data under the prefix that
 * every idempotencyKey carries: generations start again under a new prefix
 * or on a new Redis, and the epoch tells those expiries apart.
 */
/** The newest key format: what openKeyspace records for a new prefix unless told otherwise. */
export const KEY_FORMAT_VERSION: KeyFormat = 2

/** Every prefix in use on this Redis, so a process with a new prefix can say which others exist. */
export const PREFIX_REGISTRY_KEY = 'checkout-expiry:prefixes'

export interface Layout {
  version: number
  prefix: string
  shards: number
  /** When it was first recorded (ISO 8601). */
  since: string
  /** Random id of the data (src/keys.ts); a record written before epochs gets one on its first open. */
  epoch: string
  /**
   * Format 3: the listpack limits recorded with the layout. Where a hold
   * lives (bucket or a key of its own) depends on them, so every process
   * uses the recorded ones, never what it reads from the server later.
   */
  packing?: Packing
  /** Set while the prefix migrates to format 3 (src/store/migration.ts): the layout it migrates from. */
  from?: LegacyLayout
  /** While migrating: 'dual-read' (every process reads both layouts, new holds still go to the old one), then 'write-3'. */
  phase?: MigrationPhase
  /** When `checkoutctl migrate start` switched the record (ISO 8601). */
  migratingSince?: string
}

export type MigrationPhase = 'dual-read' | 'write-3'

/** The layout a migrating prefix came from: its format, epoch and first record time. */
export interface LegacyLayout {
  version: 1 | 2
  epoch: string
  since: string
}

/** A record as read: those written by earlier releases have no epoch. */
type RecordedLayout = Omit<Layout, 'epoch'> & { epoch?: unknown }

const EPOCH_PATTERN = /^[0-9a-f]{16}$/

export class LayoutMismatchError extends Error {
  override name = 'LayoutMismatchError'
}

export interface LayoutCheck {
  layout: Layout
  /** True when this process recorded the layout (first start with this prefix). */
  created: boolean
  /** Other prefixes used on this Redis: a new prefix beside them is worth a warning. */
  otherPrefixes: string[]
}

/**
 * The record under `key`, or ours recorded when there is none. Reads first and
 * writes only when the record is missing, so a full Redis, a replica or a
 * read-only user opens an existing layout; a process that loses the race to
 * record a new one gets the winner's record.
 */
async function readOrRecord (redis: RedisClient, key: string, mine: Layout): Promise<{ raw: string, created: boolean }> {
  const existing = await redis.get(key)
  if (existing !== null) return { raw: existing, created: false }
  const text = JSON.stringify(mine)
  if (await redis.set(key, text, 'NX') === 'OK') return { raw: text, created: true }
  const winner = await redis.get(key)
  if (winner === null) throw new LayoutMismatchError(`the key layout record ${key} vanished while it was being read; start again`)
  return { raw: winner, created: false }
}

/** Records the layout on first start, or checks ours against the recorded one. */
export async function ensureLayout (redis: RedisClient, keys: Keyspace): Promise<LayoutCheck> {
  const mine: Layout = {
    version: keys.format, prefix: keys.prefix, shards: keys.shards, since: new Date().toISOString(), epoch: keys.epoch,
    ...keys.format === 3 ? { packing: keys.packing } : {}
  }
  const key = `${keys.prefix}layout`
  const { raw, created } = await readOrRecord(redis, key, mine)
  const recorded = JSON.parse(raw) as RecordedLayout | null
  if (!recorded) throw new LayoutMismatchError(`the key layout record ${key} is empty; restore it or start again`)
  if (!(KEY_FORMATS as readonly number[]).includes(recorded.version)) {
    throw new LayoutMismatchError(
      `the data under KEY_PREFIX=${keys.prefix} uses key format ${recorded.version}; this release reads formats ${KEY_FORMATS.join(', ')}. ` +
      'Run the release that wrote it, or migrate the data first.')
  }
  if (recorded.version !== keys.format) {
    throw new LayoutMismatchError(
      `the data under KEY_PREFIX=${keys.prefix} uses key format ${recorded.version} (since ${recorded.since}), but this process ` +
      `names its keys with format ${keys.format}: it would read and write keys no other process uses. ` +
      'Every process must open its keyspace from the recorded layout (openKeyspace).')
  }
  if (recorded.shards !== keys.shards) {
    throw new LayoutMismatchError(
      `KEY_SHARDS=${keys.shards}, but the data under KEY_PREFIX=${keys.prefix} was written with KEY_SHARDS=${recorded.shards} ` +
      `(since ${recorded.since}). Set KEY_SHARDS=${recorded.shards} on every API and worker: a process with another value ` +
      'reads and writes other keys, and expiries are lost.')
  }
  const layout = await withEpoch(redis, key, raw, recorded, keys.epoch)
  checkMigration(key, layout)
  let otherPrefixes: string[] = []
  if (created) {
    await redis.sadd(PREFIX_REGISTRY_KEY, keys.prefix)
    otherPrefixes = (await redis.smembers(PREFIX_REGISTRY_KEY)).filter((p) => p !== keys.prefix).sort()
  }
  return { layout, created, otherPrefixes }
}

/** A migrating record must name a layout this release can drain, and a phase it knows. */
function checkMigration (key: string, layout: Layout): void {
  if (layout.from === undefined && layout.phase === undefined) return
  const from = layout.from
  const valid = layout.version === 3 && from !== undefined && (from.version === 1 || from.version === 2) &&
    typeof from.epoch === 'string' && EPOCH_PATTERN.test(from.epoch) && (layout.phase === 'dual-read' || layout.phase === 'write-3')
  if (!valid) {
    throw new LayoutMismatchError(`the key layout record ${key} names a migration this release does not know ` +
      `(from ${JSON.stringify(from)}, phase ${JSON.stringify(layout.phase)}); run the release that started it`)
  }
}

/** The keyspace of a migrating record: format 3 with the old layout beside it (docs/keys.md "Migrating to format 3"). */
export function withMigration (keys: Keyspace, layout: Layout): Keyspace {
  if (layout.from === undefined) return keys
  const legacy = createKeyspace(keys.prefix, keys.shards, layout.from.version, layout.from.epoch)
  return { ...keys, migration: { legacy, writes: layout.phase === 'write-3' ? 'new' : 'legacy' } }
}

/**
 * The record with its epoch. One written before records had an epoch gets
 * `candidate`, written once: the first process to add one wins and every
 * other gets that one back (layout-epoch-1.lua compares the whole record).
 */
async function withEpoch (redis: RedisClient, key: string, raw: string, recorded: RecordedLayout, candidate: string): Promise<Layout> {
  let epoch = recorded.epoch
  if (epoch === undefined) {
    defineScripts(redis)
    const stored = await runScript(redis, 'layout-epoch', [key], [raw, JSON.stringify({ ...recorded, epoch: candidate })]) as unknown as string | null
    if (stored === null) throw new LayoutMismatchError(`the key layout record ${key} vanished while it was being read; start again`)
    epoch = (JSON.parse(stored) as RecordedLayout).epoch
  }
  if (typeof epoch !== 'string' || !EPOCH_PATTERN.test(epoch)) {
    throw new LayoutMismatchError(`the key layout record ${key} holds an invalid epoch (${JSON.stringify(epoch)}); ` +
      'restore the record, or delete its epoch field to record a new one (docs/delivery.md)')
  }
  return { ...recorded, epoch }
}

/**
 * Reads the recorded layout, or records one with `newFormat` for a new
 * prefix, and returns the keyspace in the recorded format, with the recorded
 * epoch, after the same checks as checkLayout. Data written with format 1
 * keeps format 1.
 */
export async function openKeyspace (
  redis: RedisClient, prefix: string, shards: number, log: Pick<Log, 'warn'>, newFormat: KeyFormat = KEY_FORMAT_VERSION
): Promise<Keyspace> {
  const raw = await redis.get(`${prefix}layout`)
  const recorded = raw === null ? undefined : JSON.parse(raw) as Partial<Layout>
  const format = recorded === undefined
    ? newFormat
    // An unknown version is refused by ensureLayout below, with the message that says so.
    : (KEY_FORMATS as readonly number[]).includes(recorded.version ?? 0) ? recorded.version as KeyFormat : newFormat
  const packing = format !== 3 ? DEFAULT_PACKING : recorded?.packing ?? await readPacking(redis, log)
  const keys = createKeyspace(prefix, shards, format, undefined, packing)
  try {
    const layout = await checkLayout(redis, keys, log)
    // A process that lost the race to record a new prefix follows the winner's limits.
    const recordedPacking = format === 3 ? layout.packing ?? packing : packing
    return withMigration(layout.epoch === keys.epoch && recordedPacking === packing
      ? keys
      : createKeyspace(prefix, shards, keys.format, layout.epoch, recordedPacking), layout)
  } catch (err) {
    // Another process recorded this new prefix, with its own format, between our read and our write:
    // follow the record, as if it had been there first (the checks run again).
    if (recorded === undefined && err instanceof LayoutMismatchError && await redis.exists(`${prefix}layout`) === 1) {
      return await openKeyspace(redis, prefix, shards, log, newFormat)
    }
    throw err
  }
}

/** What the API and the worker do at start: record or check the layout, and warn about a new prefix beside others. */
export async function checkLayout (redis: RedisClient, keys: Keyspace, log: Pick<Log, 'warn'>): Promise<Layout> {
  const check = await ensureLayout(redis, keys)
  const warning = newPrefixWarning(check)
  if (warning) log.warn(warning)
  return check.layout
}

/** The warning a process logs when its prefix is new beside others: an API and a worker on different prefixes never meet. */
export function newPrefixWarning (check: LayoutCheck): string | undefined {
  if (!check.created || check.otherPrefixes.length === 0) return undefined
  return `KEY_PREFIX=${check.layout.prefix} is new on this Redis, which holds data under ${check.otherPrefixes.join(', ')}. ` +
    'If this process should share orders with those, give it the same KEY_PREFIX.'
}

const PACKING_SETTINGS: Array<[keyof Packing, string]> = [
  ['hashEntries', 'hash-max-listpack-entries'],
  ['hashValue', 'hash-max-listpack-value'],
  ['zsetEntries', 'zset-max-listpack-entries'],
  ['zsetValue', 'zset-max-listpack-value']
]

/**
 * The listpack limits of the server, which key format 3 keeps every bucket
 * within. A Redis that refuses CONFIG (a managed service, an ACL user
 * without it) is assumed to run Redis 7's defaults, with a warning: lower
 * limits there would turn buckets into hashtables and skiplists.
 */
export async function readPacking (redis: RedisClient, log: Pick<Log, 'warn'>): Promise<Packing> {
  const packing: Packing = { ...DEFAULT_PACKING }
  try {
    for (const [field, setting] of PACKING_SETTINGS) {
      const reply = await redis.config('GET', setting) as string[]
      const value = Number(reply[1])
      if (reply.length >= 2 && Number.isInteger(value)) packing[field] = value
    }
  } catch (err) {
    log.warn({ err }, 'could not read the listpack limits with CONFIG GET; key format 3 assumes the Redis defaults (128 entries, 64 bytes)')
    return { ...DEFAULT_PACKING }
  }
  if (packing.hashEntries < 1 || packing.zsetEntries < 2 || packing.zsetValue < 21 || packing.hashValue < 21) {
    throw new LayoutMismatchError(`key format 3 needs hash-max-listpack-entries >= 1, zset-max-listpack-entries >= 2 and both *-max-listpack-value >= 21; ` +
      `this Redis has ${JSON.stringify(packing)}`)
  }
  return packing
}
