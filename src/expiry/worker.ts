import { randomUUID } from 'node:crypto'
import type { Redis } from 'ioredis'
import type { Logger } from 'pino'
import { parseRedisUrl, type Config } from '../config.js'
import { createKeyspace } from '../keys.js'
import { closeRedis } from '../redis/connection.js'
import { createStoreContext } from '../store/context.js'
import { countDeadLetters } from '../store/dead-letters.js'
import { leaveAllShards, type Claimant } from '../store/expiry-jobs.js'
import { checkLayout } from '../store/layout.js'
import type { NamedHandler } from './handlers.js'
import { Heartbeat } from './heartbeat.js'
import { ensureExpiredEvents, warnEventsNotConfigurable } from './notifications.js'
import { ABORT_GRACE_MS } from './abortable.js'
import { Runner } from './runner.js'
import { subscribeExpiredEvents, type ExpiredEvents } from './subscriber.js'
import { Sweeper } from './sweeper.js'

/**
 * The expiry pipeline: keyspace events and the sweeper find due orders, the
 * claim script gives each to exactly one worker, the heartbeat keeps that
 * worker's claims alive (and takes over those of workers that died), the
 * runner calls the handlers and records the outcome.
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
  /** Unique per worker process; names its entries in Redis. */
  readonly token: string
  /**
   * Stops finding work, gives back claims it has not started, lets running
   * handlers finish within timeoutMs, gives back what still runs, leaves the
   * worker list and closes both connections.
   */
  close: (timeoutMs?: number) => Promise<void>
}

export async function startExpiryWorker (opts: ExpiryWorkerOptions): Promise<ExpiryWorker> {
  const { config, log } = opts
  const keys = createKeyspace(config.KEY_PREFIX, config.KEY_SHARDS)
  try {
    await checkLayout(opts.redis, keys, log)
  } catch (err) {
    // The worker owns its connections from here on, also when it refuses to start.
    await Promise.all([closeRedis(opts.subscriber), closeRedis(opts.redis)])
    throw err
  }
  const store = createStoreContext(opts.redis, keys, config.CHECKOUT_RESULT_RETENTION_MS)
  const claimant: Claimant = {
    token: randomUUID(),
    heartbeatTtlMs: config.EXPIRY_LEASE_MS,
    // The safety net: a live worker has aborted and recorded a run long before this.
    runningMs: config.EXPIRY_HANDLER_TIMEOUT_MS + ABORT_GRACE_MS + config.EXPIRY_LEASE_MS,
    maxAttempts: config.EXPIRY_MAX_ATTEMPTS
  }

  const runner = new Runner({
    store,
    handlers: opts.handlers,
    token: claimant.token,
    maxAttempts: config.EXPIRY_MAX_ATTEMPTS,
    backoffMs: config.EXPIRY_BACKOFF_MS,
    handlerTimeoutMs: config.EXPIRY_HANDLER_TIMEOUT_MS,
    concurrency: config.EXPIRY_CONCURRENCY,
    log,
    // Only called once jobs run, which is after the sweeper below exists.
    onIdle: () => sweeper.onCapacity()
  })
  const heartbeat = new Heartbeat({
    store,
    token: claimant.token,
    ttlMs: config.EXPIRY_LEASE_MS,
    intervalMs: config.EXPIRY_HEARTBEAT_MS,
    log,
    onLost: (shard, reason) => runner.abandonShard(shard, reason),
    onReleased: (shard) => sweeper.takeOver(shard)
  })
  const sweeper = new Sweeper({
    store,
    claimant,
    pollMs: config.EXPIRY_POLL_MS,
    capacity: () => runner.capacity(),
    run: (job, foundBy) => runner.start(job, foundBy),
    renewed: (shard, sentAt, registered) => heartbeat.renewed(shard, sentAt, registered),
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
  if (!setup.configured) {
    warnEventsNotConfigurable(log, setup.reason)
    // Tells, without holding up the start, whether the server publishes the events anyway.
    void probeEvents(opts.redis, events, config.KEY_PREFIX, log)
  }
  heartbeat.start()
  sweeper.start()
  started = true

  const report = setInterval(() => {
    countDeadLetters(store).then((deadLetters) => {
      log.info({ found: sweeper.found, ...runner.stats, running: runner.size, deadLetters }, 'expiry pipeline counters')
    }, (err: unknown) => log.debug({ err }, 'could not count dead letters'))
  }, 60_000)
  report.unref()

  let closing: Promise<void> | undefined
  return {
    sweeper,
    runner,
    token: claimant.token,
    async close (timeoutMs = config.SHUTDOWN_TIMEOUT_MS) {
      closing ??= (async () => {
        clearInterval(report)
        await sweeper.stop(timeoutMs)
        await events.close()
        const drained = await runner.drain(timeoutMs)
        heartbeat.stop()
        const released = await leaveAllShards(store, claimant.token)
        if (!drained) log.warn({ released }, 'handlers still running at the shutdown deadline were given back for another worker to run')
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
  try {
    await redis.set(key, '1', 'PX', 20)
  } catch (err) {
    log.debug({ err }, 'could not write the probe key')
    return
  }
  // Touching the key after its TTL makes Redis expire it (and publish) now.
  setTimeout(() => { void redis.exists(key).catch(() => {}) }, 60)
  if (await arrived) log.info('expired events arrive: the server is configured for them')
  else log.info('no expired event arrived for a probe key: the sweeper alone finds expiries (on time; events would only add a second trigger)')
}
