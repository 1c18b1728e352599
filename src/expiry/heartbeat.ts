import { performance } from 'node:perf_hooks'
import type { Log } from '../redis/connection.js'
import type { StoreContext } from '../store/context.js'
import { heartbeat, type WorkerBeat } from '../store/expiry-jobs.js'

/**
 * One liveness signal per worker process: a heartbeat in every shard on a
 * timer, however many jobs the worker holds, one in flight per shard at a
 * time. Leases are judged on monotonic clocks only, never on Redis's clock
 * (docs/delivery.md, "worker killed"):
 * - this worker trusts its claims in a shard until `leaseMs - intervalMs`
 *   after it sent its last renewal that Redis confirmed (heartbeat or claim);
 * - it judges another worker lapsed when that worker's beat number (moved by
 *   each of its renewals, workers.lua) has not changed for
 *   `leaseMs - intervalMs/2` since this worker first received it, and then
 *   asks Redis to reap it if the number is still the same. The sender sent
 *   that beat before we received it, so a worker is reaped at least half an
 *   interval after it gave its claims up itself (room for its timer to be
 *   late). On average a dead worker is reaped `leaseMs` after its last beat:
 *   the watcher first sees a beat half an interval after it, on average.
 */
export interface HeartbeatOptions {
  store: StoreContext
  token: string
  /** EXPIRY_LEASE_MS. */
  leaseMs: number
  intervalMs: number
  log: Log
  /**
   * The worker's claims in this shard can no longer be trusted: stop what
   * runs there. `countsAttempt` is false when Redis did not answer in time
   * while this process kept beating (not the handler's doing).
   */
  onLost: (shard: number, reason: string, countsAttempt: boolean) => void
  /** Jobs of a reaped worker became due in this shard. */
  onReleased: (shard: number) => void
}

interface ShardState {
  /** Monotonic time until which this worker's claims here are surely its own. */
  validUntil: number
  /** When the renewal behind validUntil was sent. */
  renewedAt: number
  /** onLost was called since the last renewal. */
  lost: boolean
  /** A heartbeat is in flight; `again`: send another as soon as it returns. */
  beating: boolean
  again: boolean
  /** Other workers: the beat number last seen and when (monotonic) this worker first received it. */
  seen: Map<string, { beat: number, since: number }>
  /** Beats when the first other worker would lapse. */
  watch: NodeJS.Timeout | undefined
  /** When (monotonic) Redis last answered a heartbeat or claim here. */
  answeredAt: number
}

export class Heartbeat {
  private readonly shards: ShardState[]
  /** How long a confirmed renewal keeps this worker's claims: half an interval less than others judge by, for a late timer. */
  private readonly trustMs: number
  /** How long another worker's beat number must stand still before this worker reaps it. */
  private readonly lapseMs: number
  /** A gap between two ticks longer than this means the event loop stalled. */
  private readonly stallGapMs: number
  private timer: NodeJS.Timeout | undefined
  private check: { timer: NodeJS.Timeout, at: number } | undefined
  private lastTickAt = 0
  /** When the last stall of this process ended (monotonic), -Infinity if none. */
  private stalledAt = -Infinity
  private stopped = false

  constructor (private readonly opts: HeartbeatOptions) {
    this.trustMs = opts.leaseMs - opts.intervalMs
    this.lapseMs = opts.leaseMs - opts.intervalMs / 2
    this.stallGapMs = Math.max(3 * opts.intervalMs, 500)
    this.shards = Array.from({ length: opts.store.keys.shards }, () => ({
      validUntil: 0, renewedAt: 0, lost: true, beating: false, again: false, seen: new Map(), watch: undefined, answeredAt: -Infinity
    }))
  }

  start (): void {
    this.lastTickAt = performance.now()
    // The worker opened its keyspace just before: Redis answered then.
    for (const s of this.shards) s.answeredAt = this.lastTickAt
    for (let shard = 0; shard < this.shards.length; shard++) void this.beat(shard)
    this.timer = setInterval(() => this.tick(), this.opts.intervalMs)
  }

  /**
   * How long ago Redis last answered a heartbeat or claim in the shard it
   * answered least recently (ms): a connection can stay up while Redis
   * answers nothing (frozen, or a master that hangs), and readiness must
   * tell (src/expiry/worker.ts).
   */
  silenceMs (): number {
    let oldest = Infinity
    for (const s of this.shards) oldest = Math.min(oldest, s.answeredAt)
    return performance.now() - oldest
  }

  stop (): void {
    this.stopped = true
    clearInterval(this.timer)
    if (this.check) clearTimeout(this.check.timer)
    for (const s of this.shards) clearTimeout(s.watch)
  }

  /**
   * A heartbeat or claim sent at `sentAt` (performance.now()) renewed the
   * worker in the shard. Not registered means it had been reaped: whatever
   * it still runs there now belongs to another worker. Returns whether
   * claims made by that call may still start: at least one heartbeat
   * interval of trust is left.
   */
  renewed (shard: number, sentAt: number, registered: boolean): boolean {
    const state = this.shards[shard] as ShardState
    state.answeredAt = performance.now()
    if (!registered) this.opts.onLost(shard, 'its claims were taken over by another worker', true)
    if (sentAt + this.trustMs > state.validUntil) {
      state.validUntil = sentAt + this.trustMs
      state.renewedAt = sentAt
    }
    const now = performance.now()
    if (state.validUntil > now) state.lost = false
    this.armCheck()
    return now < state.validUntil - this.opts.intervalMs
  }

  private tick (): void {
    const now = performance.now()
    if (now - this.lastTickAt > this.stallGapMs) this.stalledAt = now
    this.lastTickAt = now
    // A shard whose beat is still in flight gets none: beats must not pile up while Redis hangs.
    for (let shard = 0; shard < this.shards.length; shard++) if (!this.shards[shard]?.beating) void this.beat(shard)
  }

  /** One timer for every shard, at the earliest moment a shard's trust runs out. */
  private armCheck (): void {
    let at = Infinity
    for (const s of this.shards) if (!s.lost) at = Math.min(at, s.validUntil)
    if (this.stopped || at === Infinity || (this.check && this.check.at <= at)) return
    if (this.check) clearTimeout(this.check.timer)
    this.check = { at, timer: setTimeout(() => this.expire(at), Math.max(0, at - performance.now())) }
  }

  private expire (scheduledAt: number): void {
    this.check = undefined
    const now = performance.now()
    // A late timer or a long gap between ticks: this process stalled, and a stalled worker's attempt counts
    // (a handler that blocks its worker every time must end in the dead-letter set).
    const stalledNow = now - scheduledAt > this.stallGapMs || now - this.lastTickAt > this.stallGapMs
    for (const [shard, state] of this.shards.entries()) {
      if (state.lost || now < state.validUntil) continue
      state.lost = true
      const stalled = stalledNow || this.stalledAt >= state.renewedAt
      this.opts.onLost(shard, stalled
        ? `the worker stalled: heartbeat not renewed within ${this.trustMs} ms`
        : `Redis did not confirm the heartbeat within ${this.trustMs} ms`, stalled)
    }
    this.armCheck()
  }

  private async beat (shard: number): Promise<void> {
    const state = this.shards[shard] as ShardState
    // While Redis is away, beats would only pile up in the offline queue.
    if (this.stopped || this.opts.store.redis.status !== 'ready') return
    if (state.beating) {
      state.again = true
      return
    }
    state.beating = true
    const sentAt = performance.now()
    const reap: WorkerBeat[] = []
    for (const [token, seen] of state.seen) if (sentAt - seen.since >= this.lapseMs) reap.push({ token, beat: seen.beat })
    try {
      const result = await heartbeat(this.opts.store, shard, this.opts.token, reap)
      const receivedAt = performance.now()
      state.answeredAt = receivedAt
      if (result.status === 'reaping') this.opts.onLost(shard, 'its claims were taken over by another worker', true)
      else this.renewed(shard, sentAt, result.status === 'registered')
      this.observe(state, result.workers, receivedAt)
      if (result.released > 0) {
        this.opts.log.warn({ shard, released: result.released }, 'took over the jobs of a worker whose heartbeat lapsed')
        this.opts.onReleased(shard)
      }
      // A reap releases a bounded number of jobs per call: go on with the rest.
      if (result.reaping > 0) state.again = true
      this.watch(shard, state)
    } catch (err) {
      this.opts.log.debug({ err, shard }, 'heartbeat failed')
    } finally {
      state.beating = false
    }
    if (state.again) {
      state.again = false
      void this.beat(shard)
    }
  }

  /** Notes which other workers beat since the last reply: a changed beat number restarts their lease. */
  private observe (state: ShardState, workers: WorkerBeat[], receivedAt: number): void {
    const present = new Set<string>()
    for (const { token, beat } of workers) {
      if (token === this.opts.token) continue
      present.add(token)
      if (state.seen.get(token)?.beat !== beat) state.seen.set(token, { beat, since: receivedAt })
    }
    for (const token of state.seen.keys()) if (!present.has(token)) state.seen.delete(token)
  }

  /** Another worker lapses before our next beat: beat right then, to take over without delay. */
  private watch (shard: number, state: ShardState): void {
    clearTimeout(state.watch)
    state.watch = undefined
    let since = Infinity
    for (const seen of state.seen.values()) since = Math.min(since, seen.since)
    if (this.stopped || since === Infinity) return
    const inMs = since + this.lapseMs - performance.now()
    if (inMs >= this.opts.intervalMs) return
    state.watch = setTimeout(() => {
      state.watch = undefined
      void this.beat(shard)
    }, Math.max(0, inMs) + 1)
  }
}
