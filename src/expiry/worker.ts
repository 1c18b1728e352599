import { randomUUID } from 'node:crypto'
import type { Redis } from 'ioredis'
import type { Logger } from 'pino'
import { parseRedisUrl, type Config } from '../config.js'
import { createKeyspace } from '../keys.js'
import { closeRedis } from '../redis/connection.js'
import { createStoreContext } from '../store/context.js'
import type { NamedHandler } from './handlers.js'
import { ensureExpiredEvents } from './notifications.js'
import { Runner } from './runner.js'
import { subscribeExpiredEvents, type ExpiredEvents } from './subscriber.js'
import { Sweeper } from './sweeper.js'

/**
 * The expiry pipeline: keyspace events and the sweeper find due orders, the
 * claim script gives each to exactly one worker under a lease, the runner
 * calls the handlers and records the outcome.
 */
export interface ExpiryWorkerOptions {
  config: Config
  /** Command connection (role `worker`). */
  redis: Redis
  /** Dedicated pub/sub connection (role `subscriber`). */
  subscriber: Redis
  handlers: NamedHandler[]
  log: Logger
}

export interface ExpiryWorker {
  readonly sweeper: Sweeper
  readonly runner: Runner
  /** Stops finding work, lets running handlers finish within timeoutMs, closes both connections. */
  close: (timeoutMs?: number) => Promise<void>
}

export async function startExpiryWorker (opts: ExpiryWorkerOptions): Promise<ExpiryWorker> {
  const { config, log } = opts
  const keys = createKeyspace(config.KEY_PREFIX, config.KEY_SHARDS)
  const store = createStoreContext(opts.redis, keys, config.CHECKOUT_RESULT_RETENTION_MS)
  const lease = { token: randomUUID(), leaseMs: config.EXPIRY_LEASE_MS }

  const runner = new Runner({
    store,
    handlers: opts.handlers,
    lease,
    maxAttempts: config.EXPIRY_MAX_ATTEMPTS,
    backoffMs: config.EXPIRY_BACKOFF_MS,
    handlerTimeoutMs: config.EXPIRY_HANDLER_TIMEOUT_MS,
    concurrency: config.EXPIRY_CONCURRENCY,
    log,
    // Only called once jobs run, which is after the sweeper below exists.
    onIdle: () => sweeper.onCapacity()
  })
  const sweeper = new Sweeper({
    store,
    lease,
    pollMs: config.EXPIRY_POLL_MS,
    capacity: () => runner.capacity(),
    run: (job, foundBy) => runner.start(job, foundBy),
    log
  })

  let started = false
  const events: ExpiredEvents = await subscribeExpiredEvents({
    redis: opts.subscriber,
    db: parseRedisUrl(config.REDIS_URL).db,
    keys,
    log,
    onExpired: (shard) => sweeper.onEvent(shard),
    onSubscribed: () => {
      // A restarted Redis may have lost the setting, and events published while
      // we were away are gone: make sure of the flags, then sweep everything.
      if (!started) return
      void ensureExpiredEvents(opts.redis, log)
      sweeper.sweepAll()
    }
  })
  const setup = await ensureExpiredEvents(opts.redis, log)
  if (!setup.configured) await probeEvents(opts.redis, events, config.KEY_PREFIX, log)
  sweeper.start()
  started = true

  const report = setInterval(() => {
    log.info({ found: sweeper.found, ...runner.stats, running: runner.size }, 'expiry pipeline counters')
  }, 60_000)
  report.unref()

  let closing: Promise<void> | undefined
  return {
    sweeper: sweeper,
    runner,
    async close (timeoutMs = config.SHUTDOWN_TIMEOUT_MS) {
      closing ??= (async () => {
        clearInterval(report)
        sweeper.stop()
        await events.close()
        const drained = await runner.drain(timeoutMs)
        if (!drained) log.warn('handlers still running at the shutdown deadline; their orders will be taken over by another worker')
        log.info({ found: sweeper.found, ...runner.stats }, 'expiry worker stopped')
        await Promise.all([closeRedis(opts.subscriber), closeRedis(opts.redis)])
      })()
      return await closing
    }
  }
}

/** Where CONFIG is blocked, tells the operator whether expired events arrive anyway. */
async function probeEvents (redis: Redis, events: ExpiredEvents, prefix: string, log: Logger): Promise<void> {
  const key = `${prefix}probe:${randomUUID()}`
  const arrived = events.waitForKey(key, 2000)
  await redis.set(key, '1', 'PX', 20)
  // Touching the key after its TTL makes Redis expire it (and publish) now.
  setTimeout(() => { void redis.exists(key).catch(() => {}) }, 60)
  if (await arrived) log.info('expired events arrive: the server is configured for them')
  else log.error('no expired event arrived for a probe key: orders are found by the sweeper only, up to EXPIRY_POLL_MS late')
}
