import { run, type StoreContext } from './context.js'

/**
 * The expiry job queue of each shard, as plain functions: claim what is due,
 * renew a lease, acknowledge or fail a run. The worker drives these; an
 * operator CLI or a serverless sweeper can call the same functions.
 */
export interface ExpiryJob {
  shard: number
  /** `<generation>:<id>`: unique per expiry of one order. */
  member: string
  id: string
  generation: number
  deadline: number
  expiredAt: number
  attempt: number
  payload?: Record<string, unknown>
}

export interface ClaimResult {
  /** Redis server time of the claim, ms. */
  now: number
  /** Earliest deadline or job due time left in the shard (server time), undefined when none. */
  nextDue: number | undefined
  /** Holds this call recorded as expired (the rest were expired by other calls or are retries). */
  expired: number
  jobs: ExpiryJob[]
}

export interface Lease {
  /** Unique per worker process. */
  token: string
  leaseMs: number
}

const JOB_FIELDS = 7
const HEADER_FIELDS = 3

/**
 * Expires the shard's due holds and leases up to `limit` due jobs to this
 * worker. `seq` must be new for each claim and the same when a claim is
 * retried after an error: Redis then hands back what the lost call claimed.
 */
export async function claimDue (
  ctx: StoreContext, shard: number, limit: number, lease: Lease, seq: number
): Promise<ClaimResult> {
  const k = ctx.keys.shard(shard)
  const reply = await run(ctx, 'claim', [k.deadlines, k.jobs, k.claimRecord(lease.token)],
    [k.base, limit, lease.leaseMs, lease.token, ctx.retentionMs, seq])
  const jobs: ExpiryJob[] = []
  for (let i = HEADER_FIELDS; i + JOB_FIELDS <= reply.length; i += JOB_FIELDS) {
    const [member, id, generation, deadline, expiredAt, attempt, payload] = reply.slice(i, i + JOB_FIELDS).map(String)
    const job: ExpiryJob = {
      shard,
      member: member as string,
      id: id as string,
      generation: Number(generation),
      deadline: Number(deadline),
      expiredAt: Number(expiredAt),
      attempt: Number(attempt)
    }
    if (payload) job.payload = JSON.parse(payload) as Record<string, unknown>
    jobs.push(job)
  }
  const nextDue = Number(reply[2])
  return { now: Number(reply[0]), expired: Number(reply[1]), nextDue: nextDue >= 0 ? nextDue : undefined, jobs }
}

function jobKeys (ctx: StoreContext, job: ExpiryJob) {
  const k = ctx.keys.shard(job.shard)
  return { k, job: k.job(job.member), order: ctx.keys.order(job.id).order }
}

/** Records a successful run. False when the lease was lost to another worker. */
export async function ackJob (ctx: StoreContext, job: ExpiryJob, token: string): Promise<boolean> {
  const { k, job: jobKey, order } = jobKeys(ctx, job)
  const reply = Number(await run(ctx, 'ack', [k.jobs, jobKey, order], [job.member, token, job.generation]))
  return reply === 1 || reply === 2
}

export type FailResult = 'retry' | 'dead' | 'lease-lost'

/** Records a failed run: a retry after delayMs, or the dead-letter set after the last attempt. */
export async function failJob (
  ctx: StoreContext, job: ExpiryJob, token: string, error: string, maxAttempts: number, delayMs: number
): Promise<FailResult> {
  const { k, job: jobKey, order } = jobKeys(ctx, job)
  const reply = Number(await run(ctx, 'fail', [k.jobs, jobKey, order, k.dead],
    [job.member, token, job.generation, error.slice(0, 2000), maxAttempts, delayMs]))
  return reply === 2 ? 'dead' : reply === 1 ? 'retry' : 'lease-lost'
}

/** Extends the lease of a running job. False when it was lost. */
export async function renewLease (ctx: StoreContext, job: ExpiryJob, lease: Lease): Promise<boolean> {
  const { k, job: jobKey } = jobKeys(ctx, job)
  return Number(await run(ctx, 'renew', [k.jobs, jobKey], [job.member, lease.token, lease.leaseMs])) === 1
}

/** Server time and the earliest deadline or due job of a shard (undefined when none). */
export async function nextDue (ctx: StoreContext, shard: number): Promise<{ now: number, next: number | undefined }> {
  const k = ctx.keys.shard(shard)
  const [now, deadline, job] = (await run(ctx, 'next-due', [k.deadlines, k.jobs], [])).map(Number) as [number, number, number]
  const candidates = [deadline, job].filter((t) => t >= 0)
  return { now, next: candidates.length > 0 ? Math.min(...candidates) : undefined }
}

export interface DeadLetter {
  member: string
  id: string
  generation: number
  diedAt: number
  attempts: number
  lastError: string
  payload?: Record<string, unknown>
}

/** Lists the dead-letter set of a shard, oldest first. */
export async function listDeadLetters (ctx: StoreContext, shard: number, limit = 100): Promise<DeadLetter[]> {
  const k = ctx.keys.shard(shard)
  const members = await ctx.redis.zrange(k.dead, '0', String(limit - 1))
  const out: DeadLetter[] = []
  for (const member of members) {
    const [id, generation, attempts, lastError, diedAt, payload] = await ctx.redis.hmget(k.job(member), 'i', 'g', 'a', 'e', 'f', 'p')
    const entry: DeadLetter = {
      member,
      id: id ?? '',
      generation: Number(generation),
      attempts: Number(attempts),
      lastError: lastError ?? '',
      diedAt: Number(diedAt)
    }
    if (payload) entry.payload = JSON.parse(payload) as Record<string, unknown>
    out.push(entry)
  }
  return out
}
