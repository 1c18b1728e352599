import type { StoreContext } from '../../src/store/context.js'
import { claimDue, type Claimant, type ClaimResult } from '../../src/store/expiry-jobs.js'
import { ownShard } from '../../src/store/membership.js'

/**
 * A claim as a worker makes it, for tests that claim without a worker: the
 * claimant first takes the shard (or keeps it: same epoch), then claims in
 * that epoch. A claim by another claimant in between takes the shard from it.
 */
export async function claimAsOwner (
  ctx: StoreContext, shard: number, limit: number, claimant: Claimant, seq: number
): Promise<ClaimResult> {
  const { epoch } = await ownShard(ctx, shard, claimant.token)
  return await claimDue(ctx, shard, limit, claimant, seq, epoch)
}
