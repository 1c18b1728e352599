import type { StoreContext } from '../store/context.js'
import { purgeDeadLettersOlderThan } from '../store/dead-letters.js'
import { fields, iso, type Result } from './output.js'

/**
 * `purge --dead`: removes dead letters and their job hashes for good; with
 * no age limit (runCli has made sure of `--yes`), every one.
 */
export async function purgeCommand (store: StoreContext, olderThanMs: number | undefined): Promise<Result> {
  const { purged, cutoff } = await purgeDeadLettersOlderThan(store, olderThanMs ?? 0, { batch: 100 })
  return {
    json: { purged, olderThanMs: olderThanMs ?? 0, cutoff: iso(cutoff) },
    text: fields([['purged', purged], ['died at or before', iso(cutoff)]])
  }
}
