import type { StoreContext } from '../store/context.js'
import { ackJobs, type ExpiryJob } from '../store/expiry-jobs.js'

interface PendingAck {
  job: ExpiryJob
  resolve: (acked: boolean) => void
  reject: (err: unknown) => void
}

/**
 * Sends the acknowledgements of the runs that finish together (the
 * synchronous handlers of one claim's jobs, the handlers resolved by one
 * callback) as one script call per shard instead of one per run. At thousands of expiries a second a round
 * trip per ack is what caps a worker; batched, a turn's acks cost one call.
 * Each caller still gets its own answer (acknowledged, or the claim was lost).
 */
export class AckBatcher {
  private readonly pending = new Map<number, PendingAck[]>()
  private scheduled = false

  constructor (private readonly store: StoreContext, private readonly claimant: { readonly token: string }) {}

  async ack (job: ExpiryJob): Promise<boolean> {
    return await new Promise<boolean>((resolve, reject) => {
      let queue = this.pending.get(job.shard)
      if (!queue) this.pending.set(job.shard, queue = [])
      queue.push({ job, resolve, reject })
      if (!this.scheduled) {
        this.scheduled = true
        // Once the code that finished these runs (e.g. the jobs of one claim reply) is done, and
        // no later: a worker killed between a handler's end and its ack runs that order again.
        queueMicrotask(() => this.flush())
      }
    })
  }

  private flush (): void {
    this.scheduled = false
    const batches = [...this.pending]
    this.pending.clear()
    for (const [shard, queue] of batches) {
      ackJobs(this.store, shard, this.claimant.token, queue.map((p) => p.job)).then(
        (acked) => queue.forEach((p, i) => p.resolve(acked[i] === true)),
        (err: unknown) => queue.forEach((p) => p.reject(err)))
    }
  }
}
