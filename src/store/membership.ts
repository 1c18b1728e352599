import { run, type StoreContext } from './context.js'

/**
 * The workers of one key layout and the ownership of its shards, as plain
 * functions (docs/delivery.md, "Shard ownership"): a worker beats once per
 * interval in one membership set, every worker computes the same owner for
 * each shard from it (src/expiry/ownership.ts), and the owner takes the
 * shard with ownShard before it claims there.
 */

/** A live worker and its beat number, which moves with each of its heartbeats. */
export interface MemberBeat {
  token: string
  beat: number
  /** Stopping: still live (what it runs stays its own) but it owns no shard. */
  draining?: boolean
}

export interface MembersReply {
  /**
   * `registered`: renewed; `new`: registered by this call (its first beat);
   * `reaped`: other workers judged it lapsed and took its shards and jobs:
   * it must take a new token.
   */
  status: 'registered' | 'new' | 'reaped'
  /** Live workers with their beat numbers, this one included unless reaped. */
  live: MemberBeat[]
  /** Workers that lapsed or left (the most recent ones), most recent first: their jobs are released by the shards' owners. */
  gone: string[]
}

const STATUS = { 1: 'registered', 0: 'new', '-1': 'reaped' } as const

/**
 * Renews the worker's membership, reaps the workers in `reap` whose beat
 * number is still the one given, and returns the whole membership.
 */
export async function beatMembership (ctx: StoreContext, token: string, reap: readonly MemberBeat[] = []): Promise<MembersReply> {
  const reply = (await run(ctx, 'members-beat', [ctx.keys.members],
    [token, ctx.keys.dueChannel, ...reap.flatMap((w) => [w.token, w.beat])])).map(String)
  const live: MemberBeat[] = []
  const gone: string[] = []
  for (let i = 1; i + 1 < reply.length; i += 2) {
    const score = Number(reply[i + 1])
    if (score > 0) live.push({ token: reply[i] as string, beat: score, draining: score % 1 !== 0 })
    else gone.push(reply[i] as string)
  }
  return { status: STATUS[reply[0] as '1' | '0' | '-1'] ?? 'reaped', live, gone }
}

/**
 * A stopping worker leaves: 'drain' first (it owns no shard any more, the
 * others take them at once, but it stays live while its handlers finish),
 * then 'leave' once it gave back what it held. Returns whether it was a live member.
 */
export async function leaveMembership (ctx: StoreContext, token: string, step: 'drain' | 'leave'): Promise<boolean> {
  return Number(await run(ctx, 'members-leave', [ctx.keys.members], [token, ctx.keys.dueChannel, step])) === 1
}

export interface OwnResult {
  /** The epoch the worker owns the shard in: claims name it. */
  epoch: number
  /** Jobs of gone workers this call made due. */
  released: number
  /** Gone workers whose jobs in the shard are still to be released, by the next calls. */
  reaping: number
}

/**
 * Takes the shard for this worker (a new epoch) or keeps it (the same
 * epoch), and releases a bounded number of the jobs that the `gone` workers
 * still hold there.
 */
export async function ownShard (ctx: StoreContext, shard: number, token: string, gone: readonly string[] = []): Promise<OwnResult> {
  const k = ctx.keys.shard(shard)
  const [epoch, released, reaping] = (await run(ctx, 'own', [k.owner, k.jobs, `${k.base}reaping`], [k.base, token, ...gone])).map(Number)
  return { epoch: epoch as number, released: released as number, reaping: reaping as number }
}

/** Who owns the shard now and in which epoch; token '' when nobody does. */
export async function shardOwner (ctx: StoreContext, shard: number): Promise<{ epoch: number, token: string }> {
  const record = await ctx.redis.get(ctx.keys.shard(shard).owner) ?? '0:'
  const colon = record.indexOf(':')
  return { epoch: Number(record.slice(0, colon)), token: record.slice(colon + 1) }
}

export interface OwnershipView {
  /** Live workers: the shards each owns now, and whether it is stopping (it takes none). */
  workers: Array<{ token: string, draining: boolean, shards: number[] }>
  /** Shards whose owner record names no live worker: nobody claims there until a worker takes them. */
  unowned: number[]
}

/** Who owns what now, for an operator (`checkoutctl stats`): the membership and one GET per shard. */
export async function readOwnership (ctx: StoreContext): Promise<OwnershipView> {
  const entries = await ctx.redis.zrangebyscore(ctx.keys.members, '(0', '+inf', 'WITHSCORES')
  const workers: OwnershipView['workers'] = []
  for (let i = 0; i + 1 < entries.length; i += 2) {
    workers.push({ token: entries[i] as string, draining: Number(entries[i + 1]) % 1 !== 0, shards: [] })
  }
  const byToken = new Map(workers.map((w) => [w.token, w]))
  const owners = await Promise.all(Array.from({ length: ctx.keys.shards }, async (_v, shard) => (await shardOwner(ctx, shard)).token))
  const unowned: number[] = []
  owners.forEach((token, shard) => {
    const owner = byToken.get(token)
    if (owner) owner.shards.push(shard)
    else unowned.push(shard)
  })
  return { workers, unowned }
}
