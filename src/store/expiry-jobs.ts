import { packingArg } from '../keys.js'
import { outboxCap, run, type StoreContext } from './context.js'

/**
 * The expiry job queue of each shard, as plain functions: claim what is due
 * (the shard's owner only, src/store/membership.ts), acknowledge, fail or
 * give back a run. The worker drives these; an operator CLI or a serverless
 * sweeper can call the same functions.
 */
export interface ExpiryJob {
  shard: number
  /** `<generation>:<id>`: unique per expiry, never reused. */
  member: string
  id: string
  generation: number
  deadline: number
  expiredAt: number
  /** 1 on the first run. With the worker token, the claim's fencing token. */
  attempt: number
  payload?: Record<string, unknown>
}

/** Who claims, and the rules its claims live by. */
export interface Claimant {
  /** Unique per worker process; a new one when other workers reaped it (src/expiry/heartbeat.ts). */
  token: string
  /** A claimed job is due again after this even while its worker lives: a safety net. */
  runningMs: number
  maxAttempts: number
}

export interface ClaimResult {
  /** Redis server time of the claim, ms. */
  now: number
  /** Earliest deadline or job due time left in the shard (server time), undefined when none. */
  nextDue: number | undefined
  /** Holds this call recorded as expired (the rest were expired by other calls or are retries). */
  expired: number
  /** False when the claimant does not own the shard in the epoch it named: nothing new was handed out. */
  owns: boolean
  jobs: ExpiryJob[]
}

const JOB_FIELDS = 7
const HEADER_FIELDS = 4

/**
 * Expires the shard's due holds and leases up to `limit` due jobs to this
 * worker, if it owns the shard in `epoch` (ownShard). `seq` must be new for
 * each claim and the same when a claim is retried after an error: Redis
 * then hands back what the lost call claimed.
 */
export async function claimDue (
  ctx: StoreContext, shard: number, limit: number, claimant: Claimant, seq: number, epoch: number
): Promise<ClaimResult> {
  const k = ctx.keys.shard(shard)
  const keys = [k.jobs, k.claimRecord(claimant.token), k.owner, k.held(claimant.token), k.dead, k.outbox]
  const args = [k.base, limit, epoch, claimant.token, ctx.retentionMs, seq, claimant.maxAttempts, claimant.runningMs, outboxCap(ctx)]
  const reply = ctx.keys.format === 3
    ? await run(ctx, 'packed-claim', [k.index, ...keys, k.table, k.shardTimer], [...args, packingArg(ctx.keys.packing)])
    : await run(ctx, 'claim', [k.deadlines, ...keys], args)
  const jobs: ExpiryJob[] = []
  // Fields read in place: a claim carries up to 200 jobs, and a slice plus a
  // mapped copy of each job's fields was most of what decoding allocated.
  for (let i = HEADER_FIELDS; i + JOB_FIELDS <= reply.length; i += JOB_FIELDS) {
    const job: ExpiryJob = {
      shard,
      member: String(reply[i]),
      id: String(reply[i + 1]),
      generation: Number(reply[i + 2]),
      deadline: Number(reply[i + 3]),
      expiredAt: Number(reply[i + 4]),
      attempt: Number(reply[i + 5])
    }
    const payload = String(reply[i + 6])
    if (payload) job.payload = JSON.parse(payload) as Record<string, unknown>
    jobs.push(job)
  }
  const nextDue = Number(reply[2])
  return {
    now: Number(reply[0]),
    expired: Number(reply[1]),
    nextDue: nextDue >= 0 ? nextDue : undefined,
    owns: Number(reply[3]) === 1,
    jobs
  }
}

function jobKeys (ctx: StoreContext, job: ExpiryJob, token: string) {
  const k = ctx.keys.shard(job.shard)
  return { k, job: k.job(job.member), order: `${k.base}order:${job.id}`, held: k.held(token) }
}

/** Acks one script call takes at most (Lua's unpack has a limit; smaller calls also keep Redis responsive). */
export const ACK_BATCH_MAX = 500

/**
 * Records successful runs of one shard in one call. For each job: true when
 * acknowledged, false when the claim was lost (another worker's run owns the
 * outcome). More than ACK_BATCH_MAX jobs go in several calls.
 */
export async function ackJobs (ctx: StoreContext, shard: number, token: string, jobs: readonly ExpiryJob[]): Promise<boolean[]> {
  const k = ctx.keys.shard(shard)
  const calls: Array<Promise<unknown[]>> = []
  for (let from = 0; from < jobs.length; from += ACK_BATCH_MAX) {
    const args: Array<string | number> = [k.base, token]
    for (const job of jobs.slice(from, from + ACK_BATCH_MAX)) {
      if (job.shard !== shard) throw new Error(`ackJobs: job ${job.member} is of shard ${job.shard}, not ${shard}`)
      args.push(job.member, job.attempt)
    }
    calls.push(run(ctx, 'ack', [k.jobs, k.held(token)], args))
  }
  return (await Promise.all(calls)).flat().map((code) => Number(code) === 1 || Number(code) === 2)
}

/** Records a successful run. False when the claim was lost: another worker's run owns the outcome. */
export async function ackJob (ctx: StoreContext, job: ExpiryJob, token: string): Promise<boolean> {
  const [acked] = await ackJobs(ctx, job.shard, token, [job])
  return acked === true
}

export type FailResult = 'retry' | 'dead' | 'claim-lost'

/**
 * Records a failed run: a retry with backoff, or the dead-letter set after
 * the last attempt of its set (a replay starts a new set). The first retry
 * of a set waits between backoffMs / 2 and backoffMs (where: `jitter`, in
 * [0, 1]), each further one twice as long, at most an hour.
 */
export async function failRun (
  ctx: StoreContext, job: ExpiryJob, token: string, error: string, maxAttempts: number, backoffMs: number, jitter = Math.random()
): Promise<{ outcome: FailResult, retryInMs: number }> {
  const { k, job: jobKey, order, held } = jobKeys(ctx, job, token)
  const [code, retryInMs] = (await run(ctx, 'fail', [k.jobs, jobKey, order, k.dead, held, k.outbox],
    [k.base, job.member, token, job.attempt, job.generation, error.slice(0, 2000), maxAttempts, backoffMs, outboxCap(ctx), jitter])).map(Number)
  return { outcome: code === 2 ? 'dead' : code === 1 ? 'retry' : 'claim-lost', retryInMs: retryInMs ?? 0 }
}

/** failRun, answering only the outcome. */
export async function failJob (
  ctx: StoreContext, job: ExpiryJob, token: string, error: string, maxAttempts: number, backoffMs: number
): Promise<FailResult> {
  return (await failRun(ctx, job, token, error, maxAttempts, backoffMs)).outcome
}

export interface Release {
  job: ExpiryJob
  /**
   * `unstarted` (never run) and `interrupted` (stopped by a worker shutdown):
   * the attempt is given back; `abandoned` (the worker lost its claim): it counts.
   */
  how: 'unstarted' | 'interrupted' | 'abandoned'
}

/**
 * Gives claims back so another worker runs them at once. With `leave`, also
 * everything else the worker holds in the shard (as `rest`: interrupted when
 * it stops for a signal, abandoned when a crash stops it), and it leaves the shard.
 */
export async function releaseJobs (
  ctx: StoreContext, shard: number, token: string, releases: Release[], leave = false, rest: 'interrupted' | 'abandoned' = 'interrupted'
): Promise<number> {
  const k = ctx.keys.shard(shard)
  const args: Array<string | number> = [k.base, token, leave ? 1 : 0, rest]
  for (const r of releases) args.push(r.job.member, r.job.attempt, r.how)
  return Number(await run(ctx, 'release', [k.jobs, k.held(token), k.owner, k.claimRecord(token)], args))
}

/**
 * A stopping worker gives back everything it still holds and gives up the
 * shards it owns: with `how` 'interrupted' (a signal) the attempts are given back,
 * with 'abandoned' (a crash) they count. Returns how many jobs it gave back;
 * a shard Redis refuses is taken over by the other workers once this
 * worker's heartbeat lapses.
 */
export async function leaveAllShards (ctx: StoreContext, token: string, how: 'interrupted' | 'abandoned' = 'interrupted'): Promise<number> {
  const results = await Promise.allSettled(Array.from({ length: ctx.keys.shards }, async (_v, shard) =>
    await releaseJobs(ctx, shard, token, [], true, how)))
  return results.reduce((sum, r) => sum + (r.status === 'fulfilled' ? r.value : 0), 0)
}

/** Server time and the earliest deadline or due job of a shard (undefined when none). */
export async function nextDue (ctx: StoreContext, shard: number): Promise<{ now: number, next: number | undefined }> {
  const k = ctx.keys.shard(shard)
  const reply = ctx.keys.format === 3
    ? await run(ctx, 'packed-next-due', [k.index, k.jobs], [k.base])
    : await run(ctx, 'next-due', [k.deadlines, k.jobs], [])
  const [now, deadline, job] = reply.map(Number) as [number, number, number]
  const candidates = [deadline, job].filter((t) => t >= 0)
  return { now, next: candidates.length > 0 ? Math.min(...candidates) : undefined }
}
