import { performance } from 'node:perf_hooks'
import type { Log } from '../redis/connection.js'
import type { StoreContext } from '../store/context.js'
import { heartbeat } from '../store/expiry-jobs.js'

/**
 * One liveness signal per worker process: a heartbeat in every shard on a
 * timer, however many jobs the worker holds. Other workers take over the
 * jobs of a worker whose heartbeat lapsed, so this worker must never go on
 * believing in claims it can no longer prove: it tracks, on the monotonic
 * clock, until when each shard's last renewal (heartbeat or claim) keeps its
 * claims safe, and reports a shard as lost when that passes or when Redis
 * says the worker was reaped.
 */
export interface HeartbeatOptions {
  store: StoreContext
  token: string
  ttlMs: number
  intervalMs: number
  log: Log
  /** The worker's claims in this shard can no longer be trusted: stop what runs there. */
  onLost: (shard: number, reason: string) => void
  /** Jobs of a lapsed worker became due in this shard. */
  onReleased: (shard: number) => void
}

export class Heartbeat {
  /** Per shard, the monotonic time until which this worker's claims there are surely its own. */
  private readonly validUntil: number[]
  /** Per shard, a one-off beat at the moment another worker's heartbeat lapses. */
  private readonly watches: Array<NodeJS.Timeout | undefined>
  private timer: NodeJS.Timeout | undefined
  private stopped = false

  constructor (private readonly opts: HeartbeatOptions) {
    this.validUntil = Array.from({ length: opts.store.keys.shards }, () => 0)
    this.watches = Array.from({ length: opts.store.keys.shards }, () => undefined)
  }

  start (): void {
    this.beatAll()
    this.timer = setInterval(() => this.beatAll(), this.opts.intervalMs)
  }

  stop (): void {
    this.stopped = true
    clearInterval(this.timer)
    for (const w of this.watches) clearTimeout(w)
  }

  /**
   * A heartbeat or claim sent at `sentAt` (performance.now()) renewed the
   * worker in the shard. Not registered means it had been reaped: whatever
   * it still runs there now belongs to another worker.
   */
  renewed (shard: number, sentAt: number, registered: boolean): void {
    if (!registered) this.opts.onLost(shard, 'its claims were taken over by another worker')
    this.validUntil[shard] = Math.max(this.validUntil[shard] ?? 0, sentAt + this.opts.ttlMs)
  }

  private beatAll (): void {
    const now = performance.now()
    for (let shard = 0; shard < this.validUntil.length; shard++) {
      // Checked before sending: after an event-loop stall this is the first chance. One interval
      // early, since the next check comes an interval later and other workers take over on the dot.
      if (now >= (this.validUntil[shard] ?? 0) - this.opts.intervalMs) {
        this.opts.onLost(shard, `heartbeat not renewed within ${this.opts.ttlMs - this.opts.intervalMs} ms`)
      }
      void this.beat(shard)
    }
  }

  private async beat (shard: number): Promise<void> {
    // While Redis is away, beats would only pile up in the offline queue.
    if (this.stopped || this.opts.store.redis.status !== 'ready') return
    const sentAt = performance.now()
    try {
      const result = await heartbeat(this.opts.store, shard, this.opts.token, this.opts.ttlMs)
      this.renewed(shard, sentAt, result.registered)
      if (result.released > 0) {
        this.opts.log.warn({ shard, released: result.released }, 'took over the jobs of a worker whose heartbeat lapsed')
        this.opts.onReleased(shard)
      }
      if (result.nextLapse !== undefined) this.watch(shard, result.nextLapse - result.now)
    } catch (err) {
      this.opts.log.debug({ err, shard }, 'heartbeat failed')
    }
  }

  /** Another worker's heartbeat lapses before our next beat: beat right then, to take over without delay. */
  private watch (shard: number, inMs: number): void {
    if (this.stopped || inMs >= this.opts.intervalMs || this.watches[shard]) return
    this.watches[shard] = setTimeout(() => {
      this.watches[shard] = undefined
      void this.beat(shard)
    }, Math.max(0, inMs) + 1)
  }
}
