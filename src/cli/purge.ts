import type { StoreContext } from '../store/context.js'
import { purgeDeadLettersOlderThan } from '../store/dead-letters.js'
import { deadLetterLayouts } from '../store/migrating-store.js'
import { fields, iso, type Result } from './output.js'

/**
 * `purge --dead`: removes dead letters and their job hashes for good; with
 * no age limit (runCli has made sure of `--yes`), every one.
 */
export async function purgeCommand (store: StoreContext, olderThanMs: number | undefined): Promise<Result> {
  let purged = 0
  let cutoff = 0
  // While migrating from key format 1, the old layout's dead letters too (docs/keys.md).
  for (const s of deadLetterLayouts(store)) {
    const r = await purgeDeadLettersOlderThan(s, olderThanMs ?? 0, { batch: 100 })
    purged += r.purged
    cutoff = r.cutoff
  }
  return {
    json: { purged, olderThanMs: olderThanMs ?? 0, cutoff: iso(cutoff) },
    text: fields([['purged', purged], ['died at or before', iso(cutoff)]])
  }
}
