import { setTimeout as sleep } from 'node:timers/promises'
import type { Cluster, Redis } from 'ioredis'
import { newEpoch } from '../keys.js'
import type { Log, RedisClient } from '../redis/connection.js'
import { createStoreContext } from './context.js'
import { openKeyspace, readPacking, type Layout } from './layout.js'
import { readQueueStats } from './stats.js'

/**
 * Online migration of a prefix from key format 1 or 2 to format 3
 * (docs/keys.md "Migrating to format 3"). The layout record is the switch:
 * every process reads it every LAYOUT_POLL_MS (src/store/layout-watch.ts)
 * and follows it, so nothing restarts.
 */

/** How often every API and worker reads the layout record. */
export const LAYOUT_POLL_MS = 1000

/** Between the phases: two polls, and a second for a request that read the old record just before. */
export const PHASE_WAIT_MS = 2 * LAYOUT_POLL_MS + 1000

export class MigrationRefusedError extends Error {
  override name = 'MigrationRefusedError'
}

export type Phase = 'none' | 'dual-read' | 'write-3'

export interface MigrationStatus {
  phase: Phase
  format: number
  from?: number
  since?: string
  /** Format 2 to 3: jobs, dead letters, ended holds and idempotency records are the same keys in both layouts. */
  sharedBases: boolean
  /** What is left in the old layout. */
  left: {
    pending: number
    jobs: { total: number, due: number, running: number }
    deadLetters: number
    endedHolds: number
    idempotencyRecords: number
  }
  /** `migrate finish` would succeed now. */
  finishable: boolean
}

async function readRecord (redis: RedisClient, prefix: string): Promise<{ raw: string, layout: Layout }> {
  const raw = await redis.get(`${prefix}layout`)
  if (raw === null) throw new MigrationRefusedError(`nothing is recorded under KEY_PREFIX=${prefix} (no layout record): nothing to migrate`)
  return { raw, layout: JSON.parse(raw) as Layout }
}

/** Writes `next` only if the record still reads `expected` (WATCH/MULTI: one key, fine on a cluster). */
async function compareAndSet (redis: RedisClient, prefix: string, expected: string, next: Layout): Promise<void> {
  const key = `${prefix}layout`
  await redis.watch(key)
  if (await redis.get(key) !== expected) {
    await redis.unwatch()
    throw new MigrationRefusedError(`the layout record ${key} changed while it was being switched; run the command again`)
  }
  const replies = await redis.multi().set(key, JSON.stringify(next)).exec()
  if (replies === null) throw new MigrationRefusedError(`the layout record ${key} changed while it was being switched; run the command again`)
}

/**
 * Switches the prefix to format 3: first 'dual-read' (every process reads
 * both layouts and checks both on create, new holds still go to the old
 * one), then after waitMs 'write-3'. Format 2 keeps its epoch (the shard
 * bases and generation counters are shared, so no two expiries meet on one
 * idempotencyKey); format 1 gets a new epoch for format 3, whose counters
 * start again. Run again after an interruption, it completes the switch.
 */
export async function startMigration (
  redis: RedisClient, prefix: string, shards: number, log: Pick<Log, 'warn'>,
  report: (message: string) => void, waitMs = PHASE_WAIT_MS
): Promise<Layout> {
  await readRecord(redis, prefix)
  // The same checks as every process at start (KEY_SHARDS, a known record, an epoch).
  await openKeyspace(redis, prefix, shards, log)
  let { raw, layout } = await readRecord(redis, prefix)
  if (layout.version === 3 && layout.from === undefined) throw new MigrationRefusedError(`KEY_PREFIX=${prefix} is on key format 3 already`)
  if (layout.phase === 'write-3') return layout
  if (layout.from === undefined) {
    const from = { version: layout.version as 1 | 2, epoch: layout.epoch, since: layout.since }
    const next: Layout = {
      version: 3,
      prefix: layout.prefix,
      shards: layout.shards,
      since: layout.since,
      epoch: from.version === 2 ? from.epoch : newEpoch(),
      packing: await readPacking(redis, log),
      from,
      phase: 'dual-read',
      migratingSince: new Date().toISOString()
    }
    await compareAndSet(redis, prefix, raw, next)
    report(`KEY_PREFIX=${prefix}: format ${from.version} -> 3, phase dual-read: every process reads both layouts, new holds still go to format ${from.version}`)
  }
  report(`waiting ${waitMs} ms for every API and worker to read the switch (they read the layout record every ${LAYOUT_POLL_MS} ms)`)
  await sleep(waitMs)
  ;({ raw, layout } = await readRecord(redis, prefix))
  if (layout.phase !== 'dual-read') throw new MigrationRefusedError(`the layout record changed while waiting (phase ${String(layout.phase)}); see migrate --status`)
  const next: Layout = { ...layout, phase: 'write-3' }
  await compareAndSet(redis, prefix, raw, next)
  report(`phase write-3: new holds go to format 3; the workers drain format ${String(layout.from?.version)} (checkoutctl migrate --status)`)
  return next
}

/** Keys under the old shard bases matching `<base><kind>:*`: every master of a cluster is scanned. */
async function countOldKeys (redis: RedisClient, prefix: string, tags: readonly string[], kind: string): Promise<number> {
  const ours = new Set(tags)
  const escaped = prefix.replace(/[*?[\]\\]/g, (c) => `\\${c}`)
  const nodes: Redis[] = redis.isCluster ? (redis as Cluster).nodes('master') : [redis as Redis]
  let count = 0
  for (const node of nodes) {
    for await (const batch of node.scanStream({ match: `${escaped}{*}:${kind}:*`, count: 1000 })) {
      for (const key of batch as string[]) {
        const tag = key.slice(prefix.length + 1, key.indexOf('}', prefix.length))
        if (ours.has(tag)) count++
      }
    }
  }
  return count
}

export async function migrationStatus (redis: RedisClient, prefix: string, shards: number, log: Pick<Log, 'warn'>): Promise<MigrationStatus> {
  await readRecord(redis, prefix)
  const keys = await openKeyspace(redis, prefix, shards, log)
  const none = { pending: 0, jobs: { total: 0, due: 0, running: 0 }, deadLetters: 0, endedHolds: 0, idempotencyRecords: 0 }
  const m = keys.migration
  if (!m) return { phase: 'none', format: keys.format, sharedBases: false, left: none, finishable: false }
  const { layout } = await readRecord(redis, prefix)
  const sharedBases = m.legacy.base(0) === keys.base(0)
  const queue = await readQueueStats(createStoreContext(redis, m.legacy, 0))
  // With shared bases only pending holds are the old layout's own: the rest are format 3's keys too.
  const left = sharedBases
    ? { ...none, pending: queue.pending }
    : {
        pending: queue.pending,
        jobs: queue.jobs,
        deadLetters: queue.deadLetters,
        endedHolds: await countOldKeys(redis, prefix, m.legacy.tags, 'order'),
        idempotencyRecords: await countOldKeys(redis, prefix, m.legacy.tags, 'idem')
      }
  const empty = left.pending + left.jobs.total + left.deadLetters + left.endedHolds + left.idempotencyRecords === 0
  return {
    phase: layout.phase ?? 'dual-read',
    format: 3,
    from: m.legacy.format,
    ...layout.migratingSince !== undefined ? { since: layout.migratingSince } : {},
    sharedBases,
    left,
    finishable: layout.phase === 'write-3' && empty
  }
}

/**
 * Ends the migration: the record names format 3 alone. Refused while the old
 * layout holds anything that only it can serve (see migrationStatus), so
 * nothing becomes unreachable: pending holds and expiry jobs drain on their
 * own; old dead letters (format 1) are replayed or purged, old ended holds
 * and idempotency records expire after their retention.
 */
export async function finishMigration (redis: RedisClient, prefix: string, shards: number, log: Pick<Log, 'warn'>): Promise<MigrationStatus> {
  const status = await migrationStatus(redis, prefix, shards, log)
  if (status.phase === 'none') throw new MigrationRefusedError(`KEY_PREFIX=${prefix} is not migrating`)
  if (!status.finishable) {
    const l = status.left
    throw new MigrationRefusedError(status.phase !== 'write-3'
      ? `the switch is not complete (phase ${status.phase}): run migrate start again`
      : `the old layout (format ${String(status.from)}) still holds ${l.pending} pending holds, ${l.jobs.total} expiry jobs, ` +
        `${l.deadLetters} dead letters, ${l.endedHolds} ended holds and ${l.idempotencyRecords} idempotency records; ` +
        'see migrate --status')
  }
  const { raw, layout } = await readRecord(redis, prefix)
  const { from: _f, phase: _p, migratingSince: _s, ...rest } = layout
  await compareAndSet(redis, prefix, raw, rest)
  return { ...status, phase: 'none', finishable: false }
}
