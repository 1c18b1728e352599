import type { Redis } from 'ioredis'
import type { Log } from '../redis/connection.js'

/**
 * Keyspace notifications: the worker's fast trigger. `CONFIG SET` replaces
 * the whole value, so the flags we need are merged into what is already set.
 */
export const REQUIRED_FLAGS = 'Ex'

/** Adds `E` (keyevent channel) and `x` (expired events) to existing flags, keeping every other flag. */
export function mergeNotifyFlags (current: string): string {
  let merged = current
  if (!merged.includes('E')) merged += 'E'
  // `A` is an alias that already includes `x`.
  if (!merged.includes('x') && !merged.includes('A')) merged += 'x'
  return merged
}

export type NotificationSetup =
  | { configured: true, flags: string, changed: boolean }
  | { configured: false, reason: string }

export async function ensureExpiredEvents (redis: Redis, log: Log): Promise<NotificationSetup> {
  try {
    const reply = await redis.config('GET', 'notify-keyspace-events') as unknown as string[]
    const current = reply[1] ?? ''
    const flags = mergeNotifyFlags(current)
    if (flags !== current) {
      await redis.config('SET', 'notify-keyspace-events', flags)
      log.info({ before: current, after: flags }, 'enabled expired keyspace events')
    }
    return { configured: true, flags, changed: flags !== current }
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err)
    log.error({ reason },
      'cannot read or set notify-keyspace-events (CONFIG is renamed or blocked, as on managed Redis such as ElastiCache): ' +
      `set notify-keyspace-events to include "${REQUIRED_FLAGS}" in the server's parameter group. ` +
      'Until then expiries are found by the sweeper alone.')
    return { configured: false, reason }
  }
}
