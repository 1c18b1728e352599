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

/**
 * Makes sure the server publishes expired events. Where CONFIG is renamed or
 * blocked (managed Redis) it returns the reason instead: the caller warns
 * once, not at every reconnect.
 */
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
    return { configured: false, reason: err instanceof Error ? err.message : String(err) }
  }
}

/** The one warning for a server whose notify-keyspace-events we cannot read or set: what it costs and what to do. */
export function warnEventsNotConfigurable (log: Log, reason: string): void {
  log.warn({ reason },
    'cannot read or set notify-keyspace-events (CONFIG is renamed or blocked, as on managed Redis such as ElastiCache). ' +
    'Expiries are still found on time by the sweeper, which sleeps until each deadline; expired events only add a second trigger. ' +
    `To have them, set notify-keyspace-events to include "${REQUIRED_FLAGS}" in the server's parameter group ` +
    `(Heroku Redis: heroku redis:keyspace-notifications -c ${REQUIRED_FLAGS}).`)
}
