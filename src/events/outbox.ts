import type { Keyspace } from '../keys.js'
import { run, type StoreContext } from '../store/context.js'
import { EVENT_VERSION, type LifecycleEvent } from './schema.js'

/**
 * The per-shard outbox: the scripts that change an order append its event
 * here in the same atomic step (src/store/scripts/includes/outbox.lua); the
 * relay reads, publishes and deletes. Entries are compact (times in ms);
 * `toEvent` turns one into the published schema.
 */
export interface OutboxEntry {
  /** The outbox stream id: with the shard, the event's stable id. */
  id: string
  fields: Record<string, string>
}

/** Outbox lengths of every shard, sent together (one write on an auto-pipelined connection). */
export async function outboxLengths (ctx: StoreContext): Promise<number[]> {
  return await Promise.all(Array.from({ length: ctx.keys.shards }, async (_v, shard) =>
    await ctx.redis.xlen(ctx.keys.shard(shard).outbox)))
}

/** Takes or renews the shard's relay lock and reads its oldest entries; undefined when another relay holds the lock. */
export async function takeOutbox (
  ctx: StoreContext, shard: number, token: string, lockMs: number, count: number
): Promise<OutboxEntry[] | undefined> {
  const k = ctx.keys.shard(shard)
  const reply = await run(ctx, 'relay-take', [k.relayLock, k.outbox], [token, lockMs, count])
  if (Number(reply[0]) !== 1) return undefined
  const entries: OutboxEntry[] = []
  for (let i = 1; i + 1 < reply.length; i += 2) {
    const flat = reply[i + 1] as string[]
    const fields: Record<string, string> = {}
    for (let j = 0; j + 1 < flat.length; j += 2) fields[flat[j] as string] = flat[j + 1] as string
    entries.push({ id: String(reply[i]), fields })
  }
  return entries
}

/** Deletes relayed entries; with `release`, gives the shard's lock back if this relay still holds it. */
export async function finishOutbox (ctx: StoreContext, shard: number, token: string, ids: string[], release: boolean): Promise<number> {
  const k = ctx.keys.shard(shard)
  return Number(await run(ctx, 'relay-done', [k.relayLock, k.outbox], [token, release ? 1 : 0, ...ids]))
}

/** `<shard>-<outbox entry id>`: the same whichever relay publishes it, however often. */
export const outboxEventId = (shard: number, entryId: string) => `${shard}-${entryId}`

/** '' for a missing or bad time, which the schema then refuses. */
function iso (ms: string | undefined): string {
  const date = new Date(Number(ms))
  return ms !== undefined && Number.isFinite(date.getTime()) ? date.toISOString() : ''
}

/**
 * The published event of an outbox entry, or undefined for an entry this
 * release does not know. `keys` gives an `expired` event its eventId,
 * `<idempotencyKey>:expired`: one per expiry, whichever script recorded it,
 * as the `stream` handler of earlier releases wrote it (docs/events.md).
 */
export function toEvent (shard: number, entry: OutboxEntry, keys: Pick<Keyspace, 'idempotencyKey'>): LifecycleEvent | undefined {
  const f = entry.fields
  const base = {
    v: EVENT_VERSION,
    eventId: f.t === 'expired' ? `${keys.idempotencyKey(f.i ?? '', Number(f.g))}:expired` : outboxEventId(shard, entry.id),
    orderId: f.i ?? '',
    generation: Number(f.g),
    at: iso(f.at)
  } as const
  switch (f.t) {
    case 'created':
      return { ...base, type: 'created', expiresAt: iso(f.d), ttlMs: Number(f.ttl), payloadBytes: Number(f.pb) }
    case 'extended':
      return { ...base, type: 'extended', expiresAt: iso(f.d), ttlMs: Number(f.ttl) }
    case 'completed':
    case 'cancelled':
      return { ...base, type: f.t }
    case 'expired':
      return { ...base, type: 'expired', expiresAt: iso(f.d), payloadBytes: Number(f.pb) }
    case 'dead':
      return { ...base, type: 'dead', attempts: Number(f.a), lastError: f.e ?? '' }
    default:
      return undefined
  }
}
