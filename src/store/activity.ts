import type { StoreContext } from './context.js'
import { direct, serverTime } from './direct.js'

/**
 * What the workers did, kept in Redis for the dashboard: every worker adds
 * its counts to one small hash per minute (bounded: each expires after
 * ACTIVITY_KEEP_MS), states its own liveness in one hash field, and appends
 * finished handler runs to a capped stream. Each write touches one key, so
 * all of it works on Redis Cluster. Nothing here is on the expiry path: a
 * worker flushes what it gathered about once a second.
 */
export type RunSource = 'event' | 'sweep' | 'retry'
export type RunOutcomeName = 'handled' | 'retried' | 'dead' | 'abandoned' | 'claim_lost'

/** Upper bounds (ms) of the lateness buckets; a last bucket takes everything later. */
export const LATENESS_BOUNDS_MS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10_000, 30_000, 60_000] as const
export const MINUTE_MS = 60_000
/** Minute buckets live this long: the dashboard shows the last hour. */
export const ACTIVITY_KEEP_MS = 2 * 3_600_000
/** Runs kept for hold timelines (approximately: MAXLEN ~). */
export const RUNS_MAXLEN = 20_000

export const latenessBucket = (ms: number): number => {
  const i = LATENESS_BOUNDS_MS.findIndex((bound) => ms <= bound)
  return i < 0 ? LATENESS_BOUNDS_MS.length : i
}

const minuteKey = (ctx: StoreContext, minute: number) => `${ctx.keys.prefix}activity:m:${minute}`
const workersKey = (ctx: StoreContext) => `${ctx.keys.prefix}activity:workers`
const runsKey = (ctx: StoreContext) => `${ctx.keys.prefix}activity:runs`

/** Counts of one minute: field `r:<source>` runs finished by source, `o:<outcome>`, `l:<bucket>` first-run lateness. */
export type MinuteCounts = Map<number, Map<string, number>>

export interface WorkerState {
  token: string
  pid: number
  host: string
  /** Server time (ms) of this report. */
  at: number
  startedAt: number
  ready: boolean
  subscriber: boolean
  /**
   * The masters its expired-events subscription is up on, `host:port` (every
   * master of a cluster, the one node otherwise). Absent from reports of
   * workers of an earlier release.
   */
  masters?: string[] | undefined
  running: number
  concurrency: number
}

export interface RunRecord {
  id: string
  generation: number
  attempt: number
  /** The claiming worker's token: with the attempt, the fencing token of the run. */
  worker: string
  source: RunSource
  outcome: RunOutcomeName
  durationMs: number
  error?: string | undefined
  /** Server time the run ended (ms). */
  at: number
}

/** One flush of a worker: its counts per minute, its state, and the runs that ended. */
export async function recordActivity (
  ctx: StoreContext, counts: MinuteCounts, state: WorkerState, runs: readonly RunRecord[]
): Promise<void> {
  await direct(ctx, async () => {
    const calls: Array<Promise<unknown>> = []
    for (const [minute, fields] of counts) {
      const key = minuteKey(ctx, minute)
      const tx = ctx.redis.multi()
      for (const [field, n] of fields) tx.hincrby(key, field, n)
      tx.pexpire(key, ACTIVITY_KEEP_MS)
      calls.push(tx.exec().then((replies) => {
        const failed = replies?.find(([err]) => err)?.[0]
        if (failed) throw failed
      }))
    }
    calls.push(ctx.redis.hset(workersKey(ctx), state.token, JSON.stringify(state)))
    if (runs.length > 0) {
      const pipeline = ctx.redis.pipeline()
      for (const r of runs) {
        pipeline.xadd(runsKey(ctx), 'MAXLEN', '~', RUNS_MAXLEN, '*', 'i', r.id, 'd', JSON.stringify(r))
      }
      calls.push(pipeline.exec())
    }
    await Promise.all(calls)
  })
}

/** A worker that stops says so: its entry goes at once instead of ageing out. */
export async function forgetWorker (ctx: StoreContext, token: string): Promise<void> {
  await direct(ctx, async () => await ctx.redis.hdel(workersKey(ctx), token))
}

/** Entries older than this are removed by whoever reads them. */
export const WORKER_FORGET_MS = 3_600_000

export async function readWorkers (ctx: StoreContext): Promise<{ now: number, workers: WorkerState[] }> {
  const now = await serverTime(ctx)
  const all = await direct(ctx, async () => await ctx.redis.hgetall(workersKey(ctx)))
  const workers: WorkerState[] = []
  const stale: string[] = []
  for (const [token, raw] of Object.entries(all)) {
    const state = JSON.parse(raw) as WorkerState
    if (now - state.at > WORKER_FORGET_MS) stale.push(token)
    else workers.push(state)
  }
  if (stale.length > 0) await direct(ctx, async () => await ctx.redis.hdel(workersKey(ctx), ...stale))
  return { now, workers: workers.sort((a, b) => a.startedAt - b.startedAt) }
}

export interface MinuteActivity {
  /** Start of the minute (server ms). */
  at: number
  runs: Record<RunSource, number>
  outcomes: Record<RunOutcomeName, number>
  /** First-run lateness counts per bucket (LATENESS_BOUNDS_MS, then one for later). */
  lateness: number[]
}

/** The last `minutes` minute buckets, oldest first, the current one included. */
export async function readActivity (ctx: StoreContext, minutes: number): Promise<{ now: number, minutes: MinuteActivity[] }> {
  const now = await serverTime(ctx)
  const current = Math.floor(now / MINUTE_MS)
  const starts = Array.from({ length: Math.max(1, Math.min(120, minutes)) }, (_v, i) => current - minutes + 1 + i)
  const hashes = await direct(ctx, async () => await Promise.all(starts.map(async (m) => await ctx.redis.hgetall(minuteKey(ctx, m)))))
  return {
    now,
    minutes: hashes.map((h, i) => {
      const n = (field: string) => Number(h[field] ?? 0)
      return {
        at: (starts[i] as number) * MINUTE_MS,
        runs: { event: n('r:event'), sweep: n('r:sweep'), retry: n('r:retry') },
        outcomes: { handled: n('o:handled'), retried: n('o:retried'), dead: n('o:dead'), abandoned: n('o:abandoned'), claim_lost: n('o:claim_lost') },
        lateness: Array.from({ length: LATENESS_BOUNDS_MS.length + 1 }, (_v, b) => n(`l:${b}`))
      }
    })
  }
}

/** Runs of one order among the last `scan` recorded (newest first), bounded by the stream's cap. */
export async function readRuns (ctx: StoreContext, id: string, scan = 5000): Promise<RunRecord[]> {
  const entries = await direct(ctx, async () => await ctx.redis.xrevrange(runsKey(ctx), '+', '-', 'COUNT', scan))
  const runs: RunRecord[] = []
  for (const [, fields] of entries) {
    if (fields[1] !== id) continue
    runs.push(JSON.parse(fields[3] ?? '{}') as RunRecord)
  }
  return runs.reverse()
}

const alertsKey = (ctx: StoreContext) => `${ctx.keys.prefix}activity:alerts`

/**
 * A condition seen true on two reads further apart than this is not taken to
 * have held in between: its `for:` delay starts again. The page reads every 2 s.
 */
export const ALERT_GAP_MS = 30_000

/**
 * Since when (server ms) each alert condition has held, as seen by the reads
 * of /admin/health: one small hash, one field per alert holding now (a JSON
 * `{ since, seen }`), removed when it stops holding. Several API instances
 * may write it at once; each writes what it saw, and a lost write only moves
 * `since` by one read.
 */
export async function trackAlertConditions (
  ctx: StoreContext, now: number, holding: ReadonlyMap<string, boolean>
): Promise<Map<string, number>> {
  const key = alertsKey(ctx)
  const before = await direct(ctx, async () => await ctx.redis.hgetall(key))
  const since = new Map<string, number>()
  const write: string[] = []
  const clear: string[] = []
  for (const [name, holds] of holding) {
    if (!holds) {
      if (before[name] !== undefined) clear.push(name)
      continue
    }
    const prev = before[name] === undefined ? undefined : JSON.parse(before[name]) as { since: number, seen: number }
    const start = prev !== undefined && now - prev.seen <= ALERT_GAP_MS && prev.since <= now ? prev.since : now
    since.set(name, start)
    write.push(name, JSON.stringify({ since: start, seen: now }))
  }
  await direct(ctx, async () => {
    const tx = ctx.redis.multi()
    if (write.length > 0) tx.hset(key, ...write)
    if (clear.length > 0) tx.hdel(key, ...clear)
    tx.pexpire(key, ACTIVITY_KEEP_MS)
    await tx.exec()
  })
  return since
}
