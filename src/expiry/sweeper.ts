import type { WorkerMetrics } from '../metrics/worker-metrics.js'
import type { StoreContext } from '../store/context.js'
import { claimDue, nextDue, releaseJobs, type Claimant, type ExpiryJob } from '../store/expiry-jobs.js'
import type { Log } from '../redis/connection.js'
import { RepeatedWarning } from './repeated-warning.js'

/**
 * Finds due work in the shards this worker owns (src/expiry/ownership.ts)
 * and hands it to the runner. It sleeps until the next deadline it knows of:
 * each claim returns the shard's next one, and scripts publish a new
 * earlier one on the due channel (onDue). Keyspace events are the second
 * trigger. Nothing polls unless pollMs is set. Lateness therefore does not
 * depend on how Redis samples expired keys.
 */
export type FoundBy = 'event' | 'sweep'

export interface SweeperOptions {
  store: StoreContext
  claimant: Claimant
  /** Re-reads the next due time of every owned shard this often as a safety net; 0: never. */
  pollMs: number
  /** The epoch this worker owns the shard in; undefined: not its shard, nothing is claimed there. */
  epoch: (shard: number) => number | undefined
  /** A claim said another worker owns the shard now. */
  notOwner: (shard: number) => void
  /** Jobs the runner can take now. */
  capacity: () => number
  /** Nothing runs: every slot is free. */
  idle: () => boolean
  /**
   * Once the runner was full, claims wait until this many slots are free
   * again (or the runner is idle), so each carries a batch instead of the
   * one job a single finished run makes room for. A runner that was not
   * full since it last had that many free claims whatever room it has.
   */
  refillAt: number
  run: (job: ExpiryJob, foundBy: FoundBy | 'retry') => void
  /** False: too little of the lease is left to start jobs (src/expiry/heartbeat.ts). */
  trusted: () => boolean
  log: Log
  metrics: Pick<WorkerMetrics, 'found'>
}

interface ShardState {
  timer: NodeJS.Timeout | undefined
  /** Local clock time the timer fires at. */
  wakeAt: number
  claiming: boolean
  /** Another claim was asked for while one was running. */
  again: FoundBy | undefined
  /** Sequence number of the next claim; kept after a failed claim so its retry is idempotent. */
  seq: number
  /** Local time the last complete claim (nothing more due, timer armed) finished. */
  claimedAt: number
  /** Local time the last claim was sent. */
  sentAt: number
  /** The last claim handed out BUSY_CLAIM_JOBS or more: the shard is under load, so claims are paced. */
  busy: boolean
  /** A poll (next due time) is in flight: one at a time, so polls never pile up while Redis hangs. */
  polling: boolean
  /** Claims failed in a row, and the local time before which none is sent again. */
  failures: number
  retryAt: number
}

const CLAIM_BATCH = 200
const EVENT_QUIET_MS = 20
/**
 * Under load a shard is claimed at most this often: each claim then carries
 * the jobs of a few ms instead of one, which is what lets one worker keep up
 * with tens of thousands of expiries a second. A shard that is not busy is
 * claimed right at its next deadline.
 */
const BUSY_CLAIM_GAP_MS = 5
/** A claim that hands out this many jobs marks its shard busy; fewer happen by chance at a few hundred a second. */
const BUSY_CLAIM_JOBS = 4
const CLOCK_SAMPLE_MAX_AGE_MS = 30_000
/** A failed claim is sent again after 100 ms, doubling up to 5 s, half of it random. */
const CLAIM_RETRY_MS = 100
const CLAIM_RETRY_MAX_MS = 5000

export const claimRetryDelay = (failures: number, random = Math.random): number => {
  const exp = Math.min(CLAIM_RETRY_MS * 2 ** Math.max(0, failures - 1), CLAIM_RETRY_MAX_MS)
  return Math.round(exp / 2 + random() * exp / 2)
}

/**
 * Local time from which the shard may be claimed again: a busy shard waits
 * BUSY_CLAIM_GAP_MS after its last claim, a failed claim its retry delay.
 */
const claimsFrom = (state: ShardState): number => Math.max(state.busy ? state.sentAt + BUSY_CLAIM_GAP_MS : 0, state.retryAt)

export class Sweeper {
  readonly found: Record<FoundBy, number> = { event: 0, sweep: 0 }
  private readonly shards: ShardState[]
  /** Redis server time minus local time, so timers fire at server deadlines. */
  private clockOffset = 0
  /** Round trip (ms) and local time of the reply the offset was taken from. */
  private clockSample = { rtt: Infinity, at: 0 }
  private poller: NodeJS.Timeout | undefined
  private stopped = false
  /** Claims not yet done with (jobs handed out or given back), so stop() can wait for them. */
  private readonly inFlight = new Set<Promise<void>>()
  /** Shards that had due work while the runner was full. */
  private readonly starved = new Set<number>()
  /** Runner slots promised to claims in flight, so parallel claims never exceed the capacity. */
  private reserved = 0
  /** The runner was full and has not had refillAt free slots since: the refill gate applies. */
  private filled = false
  private readonly claimFailures: RepeatedWarning

  constructor (private readonly opts: SweeperOptions) {
    this.shards = Array.from({ length: opts.store.keys.shards }, () => ({
      timer: undefined, wakeAt: Infinity, claiming: false, again: undefined, seq: 1, claimedAt: 0, sentAt: 0, busy: false,
      polling: false, failures: 0, retryAt: 0
    }))
    this.claimFailures = new RepeatedWarning(opts.log, 'claim failed; retrying with backoff', 'claims succeed again')
  }

  start (): void {
    this.sweepAll()
    if (this.opts.pollMs > 0) this.poller = setInterval(() => { void this.refreshAll() }, this.opts.pollMs)
  }

  /** The shard became this worker's: claim what is due there now. */
  acquired (shard: number): void {
    void this.claim(shard, 'sweep')
  }

  /** The shard is no longer this worker's: no timer, no claim there. */
  dropped (shard: number): void {
    const state = this.shards[shard]
    if (!state) return
    if (state.timer) clearTimeout(state.timer)
    state.timer = undefined
    state.wakeAt = Infinity
    this.starved.delete(shard)
  }

  /**
   * Stops finding work; resolves once claims in flight are answered (and
   * their jobs given back), or after timeoutMs while Redis does not answer.
   */
  async stop (timeoutMs = Infinity): Promise<void> {
    this.stopped = true
    if (this.poller) clearInterval(this.poller)
    for (const s of this.shards) if (s.timer) clearTimeout(s.timer)
    let timer: NodeJS.Timeout | undefined
    const deadline = new Promise<void>((resolve) => { if (timeoutMs < Infinity) timer = setTimeout(resolve, timeoutMs) })
    await Promise.race([Promise.allSettled([...this.inFlight]), deadline])
    clearTimeout(timer)
  }

  /**
   * A script said something in this shard is due at `serverAt` (a new hold,
   * a retry, released jobs): wake then, unless a timer fires sooner already.
   */
  onDue (shard: number, serverAt: number): void {
    if (this.stopped || !this.shards[shard] || this.opts.epoch(shard) === undefined) return
    this.wakeAt(shard, serverAt - this.clockOffset)
  }

  /** Jobs of a gone worker became due in this shard: claim them now. */
  takeOver (shard: number): void {
    void this.claim(shard, 'sweep')
  }

  /** Claims in every owned shard now: at start and after every (re)subscribe. */
  sweepAll (): void {
    for (let shard = 0; shard < this.shards.length; shard++) if (this.opts.epoch(shard) !== undefined) void this.claim(shard, 'sweep')
  }

  /**
   * A keyspace event said something in this shard is due. Ignored while a
   * claim of the shard runs or has just finished: that claim expired
   * everything due when it ran (deleting a lapsed timer key is itself what
   * publishes many of these events) and armed the timer for anything due
   * after it.
   */
  onEvent (shard: number): void {
    const state = this.shards[shard]
    if (!state || this.opts.epoch(shard) === undefined || state.claiming || Date.now() - state.claimedAt < EVENT_QUIET_MS) return
    const from = claimsFrom(state)
    if (Date.now() < from) this.wakeAt(shard, from)
    else void this.claim(shard, 'event')
  }

  /** The runner has room again: serve the shards that had to wait. */
  onCapacity (): void {
    if (this.starved.size === 0 || !this.roomForClaim()) return
    const waiting = [...this.starved]
    this.starved.clear()
    for (const shard of waiting) void this.claim(shard, 'sweep')
  }

  private async refreshAll (): Promise<void> {
    // While Redis is away, polls would only pile up in the offline queue; the
    // reconnect is followed by a full sweep anyway.
    if (this.opts.store.redis.status !== 'ready') return
    await Promise.all(this.shards.map(async (_s, shard) => await this.refresh(shard)))
  }

  /** Re-reads the shard's next due time and sets its timer. */
  private async refresh (shard: number): Promise<void> {
    const state = this.shards[shard] as ShardState
    if (this.stopped || state.polling || this.opts.epoch(shard) === undefined) return
    state.polling = true
    try {
      const sentAt = Date.now()
      const { now, next } = await nextDue(this.opts.store, shard)
      this.learnClock(now, sentAt)
      if (next !== undefined) this.wakeAt(shard, next - this.clockOffset)
    } catch (err) {
      this.opts.log.debug({ err, shard }, 'could not read the next deadline')
    } finally {
      state.polling = false
    }
  }

  /**
   * Room for a claim: any free slot while the runner has not been full;
   * once it was, refillAt free slots or every slot (nothing runs).
   */
  private roomForClaim (): boolean {
    const free = this.opts.capacity() - this.reserved
    if (free <= 0) {
      // Slots reserved by claims in flight are not a full runner: only handlers running are.
      if (this.opts.capacity() <= 0) this.filled = true
      return false
    }
    if (this.filled && free < this.opts.refillAt && !this.opts.idle()) return false
    this.filled = false
    return true
  }

  /** Redis's clock against ours, from a reply with the server time to a call sent at sentAt (local ms). */
  private learnClock (serverNow: number, sentAt: number): void {
    // The midpoint of a round trip errs by up to half of it, and a reply that
    // waited behind other work in this process errs late; so the offset comes
    // from the quickest recent round trip, renewed at least every 30 s.
    const now = Date.now()
    const rtt = now - sentAt
    if (rtt > this.clockSample.rtt * 1.5 + 1 && now - this.clockSample.at < CLOCK_SAMPLE_MAX_AGE_MS) return
    this.clockSample = { rtt, at: now }
    this.clockOffset = serverNow - (sentAt + now) / 2
  }

  private wakeAt (shard: number, at: number): void {
    const state = this.shards[shard] as ShardState
    const localAt = Math.max(at, claimsFrom(state))
    if (this.stopped || (state.timer && state.wakeAt <= localAt)) return
    if (state.timer) clearTimeout(state.timer)
    state.wakeAt = localAt
    state.timer = setTimeout(() => {
      state.timer = undefined
      state.wakeAt = Infinity
      void this.claim(shard, 'sweep')
    }, Math.max(0, localAt - Date.now()))
  }

  private async claim (shard: number, foundBy: FoundBy): Promise<void> {
    const state = this.shards[shard] as ShardState
    // While Redis is away a claim would wait in the offline queue and come back
    // too late to trust; the poller finds the due work once it is back.
    if (this.stopped || this.opts.store.redis.status !== 'ready') return
    if (this.opts.epoch(shard) === undefined) return
    // After a failed claim: not before its retry delay.
    if (Date.now() < state.retryAt) {
      this.wakeAt(shard, state.retryAt)
      return
    }
    if (state.claiming) {
      state.again ??= foundBy
      return
    }
    state.claiming = true
    let nextDue: number | undefined
    let known = false
    let failed = false
    try {
      let more = true
      while (more && !this.stopped) {
        const epoch = this.opts.epoch(shard)
        // Dropped while the last claim ran.
        if (epoch === undefined) {
          known = true
          break
        }
        const limit = Math.min(CLAIM_BATCH, this.opts.capacity() - this.reserved)
        if (!this.roomForClaim()) {
          // The runner will call onCapacity(); re-arming a timer now would only spin.
          this.starved.add(shard)
          known = true
          break
        }
        this.reserved += limit
        // Tracked until its jobs are handed out or given back, so stop() waits for both.
        let done = () => {}
        const finished = new Promise<void>((resolve) => { done = resolve })
        this.inFlight.add(finished)
        try {
          state.sentAt = Date.now()
          const result = await claimDue(this.opts.store, shard, limit, this.opts.claimant, state.seq, epoch)
          state.seq++
          state.failures = 0
          state.retryAt = 0
          this.claimFailures.recovered()
          this.learnClock(result.now, state.sentAt)
          const trusted = this.opts.trusted()
          if (!result.owns) this.opts.notOwner(shard)
          this.found[foundBy] += result.expired
          if (result.expired > 0) this.opts.metrics.found(foundBy, result.expired)
          // Answered after stop(), or so late that the lease would end before a heartbeat can renew it:
          // runs started now would be aborted at once, so other workers get these jobs, unstarted.
          if (this.stopped || !trusted) {
            await this.giveBack(shard, result.jobs)
            break
          }
          for (const job of result.jobs) this.opts.run(job, job.attempt === 1 ? foundBy : 'retry')
          more = result.owns && result.jobs.length >= limit
          state.busy = result.jobs.length >= BUSY_CLAIM_JOBS
          nextDue = result.nextDue
          known = true
        } finally {
          this.reserved -= limit
          if (this.opts.capacity() <= 0) this.filled = true
          this.inFlight.delete(finished)
          done()
        }
      }
    } catch (err) {
      known = false
      failed = true
      // Sent again (same sequence number) after a growing, jittered delay: a claim Redis refuses
      // (OOM, MISCONF...) must not be retried in a tight loop.
      state.failures++
      const retryInMs = claimRetryDelay(state.failures)
      state.retryAt = Date.now() + retryInMs
      this.claimFailures.failed({ err, shard, retryInMs })
    } finally {
      state.claiming = false
    }
    // Slots this claim reserved but did not use are free again for shards
    // that found the runner full while it was in flight.
    if (this.opts.capacity() - this.reserved > 0) this.onCapacity()
    const again = state.again
    state.again = undefined
    if (failed) this.wakeAt(shard, state.retryAt)
    else if (again) void this.claim(shard, again)
    else if (!known) await this.refresh(shard)
    else if (!this.starved.has(shard)) {
      state.claimedAt = Date.now()
      if (nextDue !== undefined) this.wakeAt(shard, nextDue - this.clockOffset)
    }
  }

  /** Jobs claimed but never started: release them for other workers, attempts given back. */
  private async giveBack (shard: number, jobs: ExpiryJob[]): Promise<void> {
    if (jobs.length === 0) return
    const released = await releaseJobs(this.opts.store, shard, this.opts.claimant.token, jobs.map((job) => ({ job, how: 'unstarted' as const })))
    this.opts.log.info({ shard, released }, 'gave back jobs that were claimed but not started (stopping, or the claim was answered too late)')
  }

  /** A claim runs in some shard: the serverless sweep (sweep-once.ts) stops only once none does. */
  claiming (): boolean {
    return this.shards.some((s) => s.claiming)
  }

  /** Redis server time now (ms), from the measured clock offset: what deadlines are written with. */
  serverNow (): number {
    return Date.now() + this.clockOffset
  }
}
