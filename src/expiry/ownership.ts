import { createHash } from 'node:crypto'
import type { Log } from '../redis/connection.js'
import type { StoreContext } from '../store/context.js'
import type { Claimant } from '../store/expiry-jobs.js'
import { ownShard } from '../store/membership.js'
import type { MembersView } from './heartbeat.js'

/**
 * Which shards this worker owns (docs/delivery.md, "Shard ownership"). Every
 * worker computes the same owner for each shard from the membership
 * (assignShards), takes the shards assigned to it (a new epoch in each
 * shard's owner record, src/store/scripts/own-3.lua) and claims only there.
 * Two workers whose views of the membership differ for a moment may both
 * take a shard; the owner record holds one of them, and a claim naming an
 * older epoch is refused, so no two workers ever claim in a shard at once.
 */

const score = (token: string, shard: number): number => createHash('sha1').update(`${token}:${shard}`).digest().readUInt32BE(0)

/**
 * The owner of each shard among `members`: rendezvous hashing bounded by an
 * even share. Every (member, shard) pair has a score; going down the pairs
 * from the highest score, a shard goes to the member if it has no owner yet
 * and the member has room (each owns ⌊S/n⌋ shards, the first to fill ⌈S/n⌉,
 * so no worker owns more than one shard above another). A join or a leave
 * moves about the share of one worker (1.3× on average, at most about
 * 3×: test/ownership.test.ts), not every shard. The same members give the same
 * owners in every worker, whatever their order.
 */
export function assignShards (members: readonly string[], shards: number): string[] {
  const sorted = [...new Set(members)].sort()
  if (sorted.length === 0) return []
  const floor = Math.floor(shards / sorted.length)
  let extra = shards % sorted.length
  const pairs: Array<{ m: string, shard: number, s: number }> = []
  for (const m of sorted) for (let shard = 0; shard < shards; shard++) pairs.push({ m, shard, s: score(m, shard) })
  pairs.sort((a, b) => b.s - a.s || (a.m < b.m ? -1 : a.m > b.m ? 1 : a.shard - b.shard))
  const load = new Map(sorted.map((m) => [m, 0]))
  const owners: string[] = []
  for (const { m, shard } of pairs) {
    if (owners[shard] !== undefined) continue
    const n = load.get(m) as number
    if (n < floor || (n === floor && extra > 0)) {
      if (n === floor) extra--
      load.set(m, n + 1)
      owners[shard] = m
    }
  }
  return owners
}

export interface OwnershipOptions {
  store: StoreContext
  claimant: Claimant
  log: Log
  /** The shard is this worker's now: claim there. */
  onAcquired: (shard: number) => void
  /** The shard is no longer this worker's: stop claiming there (what runs goes on: the jobs are still its own). */
  onDropped: (shard: number) => void
  /** Jobs of gone workers were released in an owned shard: claim them. */
  onReleased: (shard: number) => void
}

/** Calls of own-3.lua for one shard in a row while gone workers' jobs are left to release (each releases at most 100). */
const MAX_RELEASE_CALLS = 1000

export class Ownership {
  /** Owned shards and the epoch of each. */
  private readonly epochs = new Map<number, number>()
  private readonly acquiring = new Set<number>()
  /** The shards the latest membership assigns to this worker. */
  private assigned = new Set<number>()
  private gone: string[] = []
  private membersSeen = ''
  private owners: string[] = []
  private stopped = false

  constructor (private readonly opts: OwnershipOptions) {}

  /** The epoch this worker owns the shard in, or undefined when it does not own it. */
  epoch (shard: number): number | undefined {
    return this.epochs.get(shard)
  }

  /** A membership was followed and every shard it assigns here is taken (or failed to be, to be taken again). */
  settled (): boolean {
    return this.membersSeen !== '' && this.acquiring.size === 0
  }

  owned (): number[] {
    return [...this.epochs.keys()].sort((a, b) => a - b)
  }

  /** Follows the membership of a confirmed heartbeat. */
  update (view: MembersView): void {
    if (this.stopped || view.self !== this.opts.claimant.token) return
    const key = [...view.live].sort().join(' ')
    if (key !== this.membersSeen) {
      this.membersSeen = key
      this.owners = assignShards(view.live, this.opts.store.keys.shards)
    }
    this.assigned = new Set(this.owners.flatMap((owner, shard) => owner === view.self ? [shard] : []))
    const known = new Set(this.gone)
    const newlyGone = view.gone.filter((t) => !known.has(t))
    this.gone = view.gone
    for (const shard of this.epochs.keys()) if (!this.assigned.has(shard)) this.drop(shard)
    for (const shard of this.assigned) {
      if (!this.epochs.has(shard)) void this.acquire(shard, this.gone)
      // Workers that left or lapsed since the last view: their jobs in this worker's shards are released now.
      else if (newlyGone.length > 0) void this.acquire(shard, newlyGone)
    }
  }

  /** A claim said another worker owns the shard now: stop claiming there until the membership gives it back. */
  lost (shard: number): void {
    if (this.epochs.has(shard)) this.drop(shard)
  }

  /** This worker's claims can no longer be trusted (src/expiry/heartbeat.ts): it owns nothing until its next confirmed heartbeat. */
  dropAll (): void {
    for (const shard of this.epochs.keys()) this.drop(shard)
    this.membersSeen = ''
    this.assigned = new Set()
  }

  stop (): void {
    this.stopped = true
    this.dropAll()
  }

  private drop (shard: number): void {
    this.epochs.delete(shard)
    this.opts.onDropped(shard)
  }

  /** Takes (or keeps) the shard and releases the jobs the `gone` workers held there. */
  private async acquire (shard: number, gone: readonly string[]): Promise<void> {
    if (this.acquiring.has(shard)) return
    this.acquiring.add(shard)
    const token = this.opts.claimant.token
    try {
      let result = await ownShard(this.opts.store, shard, token, gone)
      for (let calls = 1; result.reaping > 0 && calls < MAX_RELEASE_CALLS && !this.stopped; calls++) {
        if (result.released > 0) this.opts.onReleased(shard)
        result = await ownShard(this.opts.store, shard, token, [])
      }
      // Reassigned, reaped or stopped while the call ran: the next owner takes it from the record.
      if (this.stopped || token !== this.opts.claimant.token || !this.assigned.has(shard)) return
      const had = this.epochs.get(shard)
      this.epochs.set(shard, result.epoch)
      if (had === undefined) {
        this.opts.log.debug({ shard, epoch: result.epoch }, 'owns the shard')
        this.opts.onAcquired(shard)
      } else if (had !== result.epoch) {
        // Another worker took it in between and this call took it back: claim again in the new epoch.
        this.opts.onAcquired(shard)
      }
      if (result.released > 0) {
        this.opts.log.warn({ shard, released: result.released }, 'took over the jobs of a worker that lapsed or left')
        this.opts.onReleased(shard)
      }
    } catch (err) {
      // Taken again at the next heartbeat.
      this.opts.log.debug({ err, shard }, 'could not take the shard')
    } finally {
      this.acquiring.delete(shard)
    }
  }
}
