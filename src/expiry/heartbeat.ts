import { randomUUID } from 'node:crypto'
import { performance } from 'node:perf_hooks'
import type { Log } from '../redis/connection.js'
import type { StoreContext } from '../store/context.js'
import type { Claimant } from '../store/expiry-jobs.js'
import { beatMembership, leaveMembership, type MemberBeat } from '../store/membership.js'

/**
 * One liveness signal per worker process: one heartbeat per interval in its
 * layout's membership (src/store/membership.ts), however many shards and
 * jobs it has. Leases are judged on monotonic clocks only, never on Redis's
 * clock (docs/delivery.md, "Shard ownership"):
 * - this worker trusts its shards and claims until `leaseMs - intervalMs`
 *   after it sent its last heartbeat that Redis confirmed;
 * - it judges another worker lapsed when that worker's beat number has not
 *   changed for `leaseMs - intervalMs/2` since this worker first received
 *   it, and then asks Redis to reap it if the number is still the same. The
 *   sender sent that beat before we received it, so a worker is reaped at
 *   least half an interval after it gave its claims up itself (room for its
 *   timer to be late).
 * Each reply carries the whole membership: the worker's shards follow from
 * it (src/expiry/ownership.ts).
 */
export interface HeartbeatOptions {
  store: StoreContext
  /** Its token changes when other workers reaped this one: what it held went to them. */
  claimant: Claimant
  /** EXPIRY_LEASE_MS. */
  leaseMs: number
  intervalMs: number
  log: Log
  /**
   * None of the worker's claims can be trusted any more: stop what runs.
   * `countsAttempt` is false when Redis did not answer in time while this
   * process kept beating (not the handler's doing).
   */
  onLost: (reason: string, countsAttempt: boolean) => void
  /** The membership as of a confirmed heartbeat: `self` is the token it was sent with. */
  onMembers: (view: MembersView) => void
}

export interface MembersView {
  self: string
  /** Live workers that take shards (a stopping one does not). */
  live: string[]
  /** Workers that lapsed or left, most recent first. */
  gone: string[]
}

export class Heartbeat {
  /** How long a confirmed heartbeat keeps this worker's claims: half an interval less than others judge by, for a late timer. */
  private readonly trustMs: number
  /** How long another worker's beat number must stand still before this worker reaps it. */
  private readonly lapseMs: number
  /** A gap between two ticks longer than this means the event loop stalled. */
  private readonly stallGapMs: number
  /** Monotonic time until which this worker's claims are surely its own. */
  private validUntil = 0
  /** When the heartbeat behind validUntil was sent. */
  private renewedAt = 0
  /** onLost was called since the last renewal (or nothing was confirmed yet). */
  private lost = true
  /** A heartbeat is in flight; `again`: send another as soon as it returns. */
  private beating = false
  private again = false
  /** The token was registered once: a later 'new' means it had been reaped. */
  private registered = false
  /** Other workers: the beat number last seen and when (monotonic) this worker first received it. */
  private readonly seen = new Map<string, { beat: number, since: number }>()
  /** Beats when the first other worker would lapse. */
  private watchTimer: NodeJS.Timeout | undefined
  /** When (monotonic) Redis last answered a heartbeat. */
  private answeredAt = -Infinity
  private timer: NodeJS.Timeout | undefined
  private check: { timer: NodeJS.Timeout, at: number } | undefined
  private lastTickAt = 0
  /** When the last stall of this process ended (monotonic), -Infinity if none. */
  private stalledAt = -Infinity
  private stopped = false
  /** Stopping: its shards went to the others; no membership view is passed on. */
  private draining = false

  constructor (private readonly opts: HeartbeatOptions) {
    this.trustMs = opts.leaseMs - opts.intervalMs
    this.lapseMs = opts.leaseMs - opts.intervalMs / 2
    this.stallGapMs = Math.max(3 * opts.intervalMs, 500)
  }

  start (): void {
    this.lastTickAt = performance.now()
    // The worker opened its keyspace just before: Redis answered then.
    this.answeredAt = this.lastTickAt
    void this.beat()
    this.timer = setInterval(() => this.tick(), this.opts.intervalMs)
  }

  /** Beats now (the workers changed: rebalance without waiting for the timer). */
  beatNow (): void {
    void this.beat()
  }

  /**
   * Claims answered now may start runs: at least one heartbeat interval of
   * trust is left, so a run is never started on a lease about to end.
   */
  trusted (): boolean {
    return !this.lost && performance.now() < this.validUntil - this.opts.intervalMs
  }

  /**
   * How long ago Redis last answered a heartbeat (ms): a connection can stay
   * up while Redis answers nothing (frozen, or a master that hangs), and
   * readiness must tell (src/expiry/worker.ts).
   */
  silenceMs (): number {
    return performance.now() - this.answeredAt
  }

  stop (): void {
    this.stopped = true
    clearInterval(this.timer)
    if (this.check) clearTimeout(this.check.timer)
    clearTimeout(this.watchTimer)
  }

  /**
   * 'drain': this worker takes no shard any more (the others take its shards
   * at once) but its beats go on; 'leave': it leaves the membership.
   */
  async leave (step: 'drain' | 'leave'): Promise<void> {
    if (step === 'drain') this.draining = true
    await leaveMembership(this.opts.store, this.opts.claimant.token, step)
  }

  private tick (): void {
    const now = performance.now()
    if (now - this.lastTickAt > this.stallGapMs) this.stalledAt = now
    this.lastTickAt = now
    // No beat while one is still in flight: beats must not pile up while Redis hangs.
    if (!this.beating) void this.beat()
  }

  private renewed (sentAt: number): void {
    if (sentAt + this.trustMs > this.validUntil) {
      this.validUntil = sentAt + this.trustMs
      this.renewedAt = sentAt
    }
    if (this.validUntil > performance.now()) this.lost = false
    this.armCheck()
  }

  private armCheck (): void {
    const at = this.validUntil
    if (this.stopped || this.lost || (this.check && this.check.at <= at)) return
    if (this.check) clearTimeout(this.check.timer)
    this.check = { at, timer: setTimeout(() => this.expire(at), Math.max(0, at - performance.now())) }
  }

  private expire (scheduledAt: number): void {
    this.check = undefined
    const now = performance.now()
    if (this.lost) return
    if (now < this.validUntil) {
      this.armCheck()
      return
    }
    // A late timer or a long gap between ticks: this process stalled, and a stalled worker's attempt counts
    // (a handler that blocks its worker every time must end in the dead-letter set).
    const stalled = now - scheduledAt > this.stallGapMs || now - this.lastTickAt > this.stallGapMs || this.stalledAt >= this.renewedAt
    this.loseAll(stalled
      ? `the worker stalled: heartbeat not renewed within ${this.trustMs} ms`
      : `Redis did not confirm the heartbeat within ${this.trustMs} ms`, stalled)
  }

  private loseAll (reason: string, countsAttempt: boolean): void {
    this.lost = true
    this.validUntil = 0
    this.opts.onLost(reason, countsAttempt)
  }

  private async beat (): Promise<void> {
    // While Redis is away, beats would only pile up in the offline queue.
    if (this.stopped || this.opts.store.redis.status !== 'ready') return
    if (this.beating) {
      this.again = true
      return
    }
    this.beating = true
    const sentAt = performance.now()
    const token = this.opts.claimant.token
    const reap: MemberBeat[] = []
    for (const [other, seen] of this.seen) if (sentAt - seen.since >= this.lapseMs) reap.push({ token: other, beat: seen.beat })
    try {
      const reply = await beatMembership(this.opts.store, token, reap)
      const receivedAt = performance.now()
      this.answeredAt = receivedAt
      if (this.stopped || token !== this.opts.claimant.token) return
      if (reply.status === 'reaped' || (reply.status === 'new' && this.registered)) {
        // Its shards and jobs went to the others, who release everything held under this token: a new one.
        this.opts.claimant.token = randomUUID()
        this.registered = false
        this.opts.log.warn({ token: this.opts.claimant.token }, 'other workers judged this worker lapsed and took its shards over; joining again')
        this.loseAll('its claims were taken over by another worker', true)
        this.again = true
        return
      }
      this.registered = true
      this.renewed(sentAt)
      this.observe(reply.live, token, receivedAt)
      if (!this.draining) this.opts.onMembers({ self: token, live: reply.live.flatMap((m) => m.draining ? [] : [m.token]), gone: reply.gone })
      this.watch()
    } catch (err) {
      this.opts.log.debug({ err }, 'heartbeat failed')
    } finally {
      this.beating = false
      if (this.again) {
        this.again = false
        void this.beat()
      }
    }
  }

  /** Notes which other workers beat since the last reply: a changed beat number restarts their lease. */
  private observe (live: MemberBeat[], self: string, receivedAt: number): void {
    const present = new Set<string>()
    for (const { token, beat } of live) {
      if (token === self) continue
      present.add(token)
      if (this.seen.get(token)?.beat !== beat) this.seen.set(token, { beat, since: receivedAt })
    }
    for (const token of this.seen.keys()) if (!present.has(token)) this.seen.delete(token)
  }

  /** Another worker lapses before our next beat: beat right then, to take over without delay. */
  private watch (): void {
    clearTimeout(this.watchTimer)
    this.watchTimer = undefined
    let since = Infinity
    for (const seen of this.seen.values()) since = Math.min(since, seen.since)
    if (this.stopped || since === Infinity) return
    const inMs = since + this.lapseMs - performance.now()
    if (inMs >= this.opts.intervalMs) return
    this.watchTimer = setTimeout(() => {
      this.watchTimer = undefined
      void this.beat()
    }, Math.max(0, inMs) + 1)
  }
}
