import { randomUUID } from 'node:crypto'
import { Value } from '@sinclair/typebox/value'
import type { Log } from '../redis/connection.js'
import type { StoreContext } from '../store/context.js'
import { finishOutbox, outboxLengths, takeOutbox, toEvent, type OutboxEntry } from './outbox.js'
import { eventFields, LifecycleEvent } from './schema.js'

/**
 * Moves lifecycle events from every shard's outbox to `<prefix>events`.
 * Per shard: take the relay lock and the oldest entries (one script), XADD
 * them to the events stream in order (one pipeline to one key, so fine on a
 * cluster), delete what was published (one script). An event published and
 * not yet deleted when the relay dies is published again by the next relay,
 * under the same eventId: consumers drop it (docs/events.md).
 */
export interface EventRelayOptions {
  store: StoreContext
  log: Log
  /** The events stream is trimmed to about this many entries (EVENT_STREAM_MAXLEN). */
  maxLen: number
  /** How often every shard's outbox length is read (one pipelined round). */
  intervalMs?: number
  /** Entries read and published per round. */
  batchSize?: number
  /** A relay that dies holding a shard's lock delays that shard this long at most. */
  lockMs?: number
  /** stop() waits this long for a pass under way (a pass waits for Redis while it is away). */
  stopTimeoutMs?: number
}

export interface EventRelayStats {
  /** Events published to the stream. */
  relayed: number
  /** Outbox entries this release cannot read (written by another release): logged and dropped. */
  dropped: number
}

export interface EventRelay {
  readonly stats: EventRelayStats
  stop: () => Promise<void>
}

/** Rounds per shard per pass: bounds one pass; what is left goes in the next one. */
const MAX_ROUNDS = 10

export function startEventRelay (opts: EventRelayOptions): EventRelay {
  const { store, log, maxLen } = opts
  const intervalMs = opts.intervalMs ?? 250
  const batchSize = opts.batchSize ?? 200
  const lockMs = opts.lockMs ?? 2000
  const token = randomUUID()
  const stats: EventRelayStats = { relayed: 0, dropped: 0 }
  let stopped = false
  let failing = false
  /** Shards whose last publish Redis refused: warned once, until one succeeds. */
  const refused = new Set<number>()
  let timer: NodeJS.Timeout | undefined
  let current: Promise<void> | undefined

  /** Publishes entries in order; returns the ids to delete (a prefix of them) and whether one failed. */
  async function publish (shard: number, entries: OutboxEntry[]): Promise<{ done: string[], failed: boolean }> {
    const events = entries.map((entry) => {
      const event = toEvent(shard, entry, store.keys)
      return event && Value.Check(LifecycleEvent, event) ? event : undefined
    })
    const pipeline = store.redis.pipeline()
    for (const event of events) {
      if (event) pipeline.xadd(store.keys.events, 'MAXLEN', '~', maxLen, '*', ...eventFields(event))
    }
    const results = (await pipeline.exec()) ?? []
    const done: string[] = []
    let r = 0
    for (const [i, entry] of entries.entries()) {
      if (!events[i]) {
        log.error({ shard, entryId: entry.id, fields: entry.fields }, 'outbox entry of an unknown kind (another release?): dropped')
        stats.dropped++
        done.push(entry.id)
        continue
      }
      const err = results[r++]?.[0]
      if (err) {
        // Later entries wait, so the order of a shard's events holds.
        if (refused.has(shard)) log.debug({ err, shard, entryId: entry.id }, 'could not publish an event')
        else log.warn({ err, shard, entryId: entry.id }, 'could not publish an event; retrying on the next pass')
        refused.add(shard)
        return { done, failed: true }
      }
      refused.delete(shard)
      stats.relayed++
      done.push(entry.id)
    }
    return { done, failed: false }
  }

  async function relayShard (shard: number): Promise<void> {
    for (let round = 0; round < MAX_ROUNDS; round++) {
      const entries = await takeOutbox(store, shard, token, lockMs, batchSize)
      if (!entries) return // another relay moves this shard now
      const { done, failed } = entries.length > 0 ? await publish(shard, entries) : { done: [], failed: false }
      const last = failed || stopped || entries.length < batchSize || round === MAX_ROUNDS - 1
      await finishOutbox(store, shard, token, done, last)
      if (last) return
    }
  }

  async function pass (): Promise<void> {
    const lengths = await outboxLengths(store)
    await Promise.all(lengths.map(async (length, shard) => { if (length > 0) await relayShard(shard) }))
  }

  const tick = () => {
    timer = undefined
    current = pass().then(() => {
      if (failing) log.info('event relay resumed')
      failing = false
    }, (err: unknown) => {
      // Once per outage at warn: the relay retries every interval.
      if (!failing) log.warn({ err }, 'event relay pass failed; retrying')
      else log.debug({ err }, 'event relay pass failed again')
      failing = true
    }).finally(() => {
      current = undefined
      if (!stopped) timer = setTimeout(tick, intervalMs)
    })
  }
  timer = setTimeout(tick, 0)

  return {
    stats,
    async stop () {
      stopped = true
      if (timer) clearTimeout(timer)
      timer = undefined
      const running = current
      if (!running) return
      let waited: NodeJS.Timeout | undefined
      await Promise.race([running, new Promise<void>((resolve) => { waited = setTimeout(resolve, opts.stopTimeoutMs ?? 2000) })])
      clearTimeout(waited)
    }
  }
}
