import type { Keyspace } from '../keys.js'
import type { Log, RedisClient } from '../redis/connection.js'
import { LayoutMismatchError, openKeyspace } from './layout.js'
import { LAYOUT_POLL_MS } from './migration.js'

/**
 * Reads the layout record every LAYOUT_POLL_MS (one GET) and, when it
 * changed, opens the keyspace it names and hands it to `onChange`: how a
 * running API or worker follows `checkoutctl migrate` without a restart.
 * A failed read is tried again at the next poll; a record this release
 * cannot follow is logged and the process keeps the keyspace it has.
 */
export interface LayoutWatch {
  stop: () => void
}

/** What a process must follow: the format, the epoch and the migration's state. */
const signature = (k: Keyspace) => `${k.format}/${k.epoch}/${k.migration?.legacy.format ?? '-'}/${k.migration?.writes ?? '-'}`

export function watchLayout (opts: {
  redis: RedisClient
  keys: () => Keyspace
  log: Pick<Log, 'warn' | 'info' | 'error'>
  onChange: (keys: Keyspace) => void
  intervalMs?: number
}): LayoutWatch {
  const { redis, log } = opts
  let last: string | undefined
  let stopped = false
  let timer: NodeJS.Timeout | undefined
  const poll = async () => {
    const current = opts.keys()
    const raw = await redis.get(`${current.prefix}layout`)
    if (raw === last || raw === null) return
    const keys = await openKeyspace(redis, current.prefix, current.shards, log)
    last = raw
    if (stopped || signature(keys) === signature(opts.keys())) return
    log.info({ format: keys.format, from: keys.migration?.legacy.format, writes: keys.migration?.writes }, 'the key layout record changed: following it')
    opts.onChange(keys)
  }
  const tick = () => {
    if (stopped) return
    poll().catch((err: unknown) => {
      if (err instanceof LayoutMismatchError) log.error({ err }, 'the key layout record changed to one this process cannot follow; keeping the layout it has')
    }).finally(() => {
      if (!stopped) timer = setTimeout(tick, opts.intervalMs ?? LAYOUT_POLL_MS).unref()
    })
  }
  tick()
  return {
    stop () {
      stopped = true
      clearTimeout(timer)
    }
  }
}
