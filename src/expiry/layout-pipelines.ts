import type { Keyspace } from '../keys.js'
import { startEventRelay, type EventRelay } from '../events/relay.js'
import type { StoreContext } from '../store/context.js'
import type { Log } from '../redis/connection.js'
import { startPipeline, stopPipeline, type ExpiryPipeline } from './pipeline.js'

/**
 * The expiry pipelines of one worker process: one per key layout it drains.
 * Normally one; while the prefix migrates to format 3 (docs/keys.md
 * "Migrating to format 3") a second one claims and runs the old layout's
 * due holds, retries and jobs left in flight, each with a claimant token of
 * its own, so the claims stay fenced per pipeline exactly as between two
 * workers. A pipeline, once started, keeps its keyspace for its whole life:
 * the jobs it holds are acknowledged under the keys it claimed them with.
 */
export interface LayoutPipeline {
  store: StoreContext
  pipeline: ExpiryPipeline
  relay?: EventRelay | undefined
}

export interface LayoutPipelinesOptions {
  /** A store context like the primary one, over other keys. */
  storeFor: (keys: Keyspace) => StoreContext
  make: (store: StoreContext) => ExpiryPipeline
  /** Event settings: each layout's outboxes need their relay (format 1 has its own shard bases). */
  events?: { maxLen: number } | undefined
  log: Log
}

/** Two keyspaces name the same keys when format, epoch and shard bases agree. */
const sameLayout = (a: Keyspace, b: Keyspace) => a.format === b.format && a.epoch === b.epoch && a.base(0) === b.base(0)

export class LayoutPipelines {
  private readonly list: LayoutPipeline[] = []

  constructor (private readonly opts: LayoutPipelinesOptions, primary: LayoutPipeline) {
    this.list.push(primary)
  }

  get all (): readonly LayoutPipeline[] {
    return this.list
  }

  /** Starts a pipeline for each layout `keys` names (format 3 and, while migrating, the old one) that none runs yet. */
  follow (keys: Keyspace): void {
    const { migration: _m, ...current } = keys
    for (const layout of [current, keys.migration?.legacy]) {
      if (!layout || this.list.some((p) => sameLayout(p.store.keys, layout))) continue
      const store = this.opts.storeFor(layout)
      const pipeline = this.opts.make(store)
      const relay = this.opts.events ? startEventRelay({ store, log: this.opts.log, maxLen: this.opts.events.maxLen }) : undefined
      this.list.push({ store, pipeline, relay })
      startPipeline(pipeline)
      this.opts.log.info({ format: layout.format, token: pipeline.claimant.token }, 'draining another key layout')
    }
  }

  /** Timer keys of any layout drained here. */
  parseTimerKey (key: string): { id: string, shard: number } | undefined {
    for (const p of this.list) {
      const parsed = p.store.keys.parseTimerKey(key)
      if (parsed) return parsed
    }
    return undefined
  }

  shardOfBase (base: string): number | undefined {
    for (const p of this.list) {
      const shard = p.store.keys.shardOfBase(base)
      if (shard !== undefined) return shard
    }
    return undefined
  }

  /** The pipelines started by follow(): the worker stops the primary one itself. */
  async stopOthers (timeoutMs: number, crashed: boolean): Promise<void> {
    const others = this.list.slice(1)
    await Promise.all(others.map(async ({ store, pipeline, relay }) => {
      await stopPipeline(pipeline, store, timeoutMs, crashed)
      await relay?.stop()
    }))
  }
}
