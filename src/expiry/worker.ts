import { randomUUID } from 'node:crypto'
import type { Cluster, Redis } from 'ioredis'
import type { Logger } from 'pino'
import { parseRedisUrl, type Config } from '../config.js'
import type { ShutdownCause } from '../process.js'
import type { KeyFormat, Keyspace } from '../keys.js'
import { createWorkerMetrics, type WorkerMetrics } from '../metrics/worker-metrics.js'
import { closeRedis, type RedisClient } from '../redis/connection.js'
import { startEventRelay } from '../events/relay.js'
import { createStoreContext } from '../store/context.js'
import { countDeadLetters } from '../store/dead-letters.js'
import { countPendingHolds } from '../store/stats.js'
import { openKeyspace } from '../store/layout.js'
import type { NamedHandler } from './handlers.js'
import { createActivityRecorder } from './activity-recorder.js'
import { startHousekeeping } from './housekeeping.js'
import { startWorkerHttp, type Readiness, type WorkerHttp } from './http.js'
import { ensureExpiredEvents, warnEventsNotConfigurable } from './notifications.js'
import { createExpiryPipeline, startPipeline, stopPipeline } from './pipeline.js'
import { LayoutPipelines } from './layout-pipelines.js'
import { watchLayout } from '../store/layout-watch.js'
import type { Runner } from './runner.js'
import { subscribeClusterExpiredEvents } from './cluster-subscriber.js'
import { subscribeExpiredEvents, type ExpiredEvents } from './subscriber.js'
import type { Sweeper } from './sweeper.js'

/**
 * The expiry pipeline: keyspace events and the sweeper find due orders, the
 * claim script gives each to exactly one worker, the heartbeat keeps that
 * worker's claims alive (and takes over those of workers that died), the
 * runner calls the handlers and records the outcome.
 */
export interface ExpiryWorkerOptions {
  config: Config
  /** Command connection (role `worker`): one node (standalone, Sentinel) or a Redis Cluster. */
  redis: RedisClient
  /** Dedicated pub/sub connection (role `subscriber`) on one node; required unless `redis` is a Cluster. */
  subscriber?: Redis | undefined
  /**
   * On a Cluster: opens a dedicated connection to one node, for the
   * expired-events subscription on each master (role `subscriber`, with the
   * same TLS and credentials as the cluster). Required with a Cluster.
   */
  connectNode?: ((node: { host: string, port: number }) => Redis) | undefined
  /**
   * The key format recorded for a new KEY_PREFIX (src/keys.ts); data already
   * recorded keeps its format. 1 (the default) until every process that
   * writes keys opens its keyspace from the record.
   */
  keyFormat?: KeyFormat | undefined
  handlers: NamedHandler[]
  log: Logger
  /** The worker's metrics; by default a registry of its own. */
  metrics?: WorkerMetrics | undefined
  /** Serves /metrics, /healthz and /readyz here (port 0: a free one); none without. */
  http?: { port: number, host: string } | undefined
}

export interface ExpiryWorker {
  readonly sweeper: Sweeper
  readonly runner: Runner
  /** Unique per worker process; names its entries in Redis. */
  readonly token: string
  readonly metrics: WorkerMetrics
  /** The port of the HTTP server, when it runs one. */
  readonly httpPort: number | undefined
  /** Ready once subscribed with both connections up and Redis answering heartbeats (within EXPIRY_LEASE_MS); not while Redis is away or frozen, nor while the worker stops. */
  readiness: () => Readiness
  /** On a cluster, the masters whose expired events reach this worker now (`host:port`); empty on one node. */
  subscribedMasters: () => string[]
  /**
   * Stops finding work, gives back claims it has not started, lets running
   * handlers finish within timeoutMs, gives back what still runs, leaves the
   * worker list and closes both connections. With cause 'crash' (an uncaught
   * exception or unhandled rejection, which a handler may have caused) the
   * runs still going at the deadline are given back as counted attempts, so
   * a handler that crashes its worker every time ends dead; after a signal
   * their attempts are given back.
   */
  close: (timeoutMs?: number, cause?: ShutdownCause) => Promise<void>
}

export async function startExpiryWorker (opts: ExpiryWorkerOptions): Promise<ExpiryWorker> {
  const { config, log } = opts
  const cluster = isCluster(opts.redis) ? opts.redis : undefined
  const closeConnections = async () => await Promise.all([opts.subscriber && closeRedis(opts.subscriber), closeRedis(opts.redis)])
  if (cluster ? !opts.connectNode : !opts.subscriber) {
    await closeConnections()
    throw new Error(cluster
      ? 'the expiry worker on a Redis Cluster needs connectNode: expired events are subscribed on every master'
      : 'the expiry worker needs a subscriber connection for expired events')
  }
  const metrics = opts.metrics ?? createWorkerMetrics()
  let state: 'starting' | 'running' | 'closing' = 'starting'
  const readiness = (): Readiness => {
    if (state !== 'running') return { ready: false, reason: state === 'starting' ? 'starting' : 'shutting down' }
    if (opts.redis.status !== 'ready') return { ready: false, reason: 'the Redis command connection is down' }
    // Running means subscribed and beating: `subscription` and `heartbeat` (below) exist by then.
    if (!subscription.connected()) return { ready: false, reason: 'not subscribed to expired events' }
    // Connected is not answering: a frozen Redis keeps its connections open. The heartbeat
    // round-trips every EXPIRY_HEARTBEAT_MS; past the lease another worker would judge this one gone.
    const silentMs = heartbeat.silenceMs()
    if (silentMs > config.EXPIRY_LEASE_MS) return { ready: false, reason: `Redis has not answered a heartbeat for ${Math.round(silentMs)} ms` }
    return { ready: true }
  }
  let http: WorkerHttp | undefined
  let keys: Keyspace
  try {
    // Up first, so probes get an answer (503) while the worker waits for Redis.
    if (opts.http) http = await startWorkerHttp({ ...opts.http, registry: metrics.registry, readiness, log })
    keys = await openKeyspace(opts.redis, config.KEY_PREFIX, config.KEY_SHARDS, log, opts.keyFormat ?? config.KEY_FORMAT as KeyFormat)
  } catch (err) {
    // The worker owns its connections from here on, also when it refuses to start.
    await Promise.all([closeConnections(), http?.close()])
    throw err
  }
  const eventSettings = config.EVENT_STREAM ? { maxLen: config.EVENT_STREAM_MAXLEN } : undefined
  const store = createStoreContext(opts.redis, keys, config.CHECKOUT_RESULT_RETENTION_MS, { events: eventSettings })
  const token = randomUUID()
  // What the dashboard shows of this worker (src/expiry/activity-recorder.ts).
  const activity = createActivityRecorder({
    store,
    token,
    concurrency: config.EXPIRY_CONCURRENCY,
    log,
    serverNow: () => sweeper.serverNow(),
    state: () => ({ ready: readiness().ready, subscriber: subscription.connected(), masters: subscription.masters(), running: runner.size })
  })
  const pipelineOf = (s: typeof store, t?: string) => createExpiryPipeline({
    config, store: s, handlers: opts.handlers, log, metrics: activity.metrics(metrics), onRunEnd: activity.onRunEnd, ...t ? { token: t } : {}
  })
  const primary = pipelineOf(store, token)
  const { claimant, runner, heartbeat, sweeper } = primary
  // While the prefix migrates to format 3, a second pipeline drains the old layout (docs/keys.md).
  const pipelines = new LayoutPipelines({
    storeFor: (k) => createStoreContext(opts.redis, k, config.CHECKOUT_RESULT_RETENTION_MS, { events: eventSettings }),
    make: (s) => pipelineOf(s),
    events: eventSettings,
    log
  }, { store, pipeline: primary })
  const sweepers = () => pipelines.all.map((p) => p.pipeline.sweeper)
  // Expired events and due messages of every layout drained here, to every pipeline (a needless sweep of a shard is cheap).
  const routingKeys: Keyspace = { ...keys, parseTimerKey: (key) => pipelines.parseTimerKey(key), shardOfBase: (b) => pipelines.shardOfBase(b) }
  const onExpired = (shard: number) => { for (const s of sweepers()) s.onEvent(shard) }
  const onDue = (shard: number, at: number) => { for (const s of sweepers()) s.onDue(shard, at) }
  const onMembers = () => { for (const p of pipelines.all) p.pipeline.heartbeat.beatNow() }

  let started = false
  const onSubscribed = () => {
    // Events published while we were not subscribed are gone: sweep everything.
    if (started) for (const s of sweepers()) s.sweepAll()
  }
  let subscription: ExpiredEvents
  let subscribedMasters = (): string[] => []
  let eventsConfigurable: boolean
  if (cluster && opts.connectNode) {
    let warned = false
    let refusedReason: string | undefined
    const clusterEvents = await subscribeClusterExpiredEvents({
      cluster,
      connectNode: opts.connectNode,
      keys: routingKeys,
      log,
      onExpired,
      onDue,
      onMembers,
      onSubscribed,
      onNotConfigurable: (node, reason) => {
        refusedReason ??= reason
        if (warned) log.debug({ node, reason }, 'cannot set notify-keyspace-events on this node either')
        else warnEventsNotConfigurable(log, reason)
        warned = true
      }
    })
    subscription = clusterEvents
    subscribedMasters = clusterEvents.masters
    eventsConfigurable = refusedReason === undefined
  } else {
    // One node: CONFIG goes over the command connection (a subscribed connection cannot send it).
    const node = opts.redis as Redis
    const subscriber = opts.subscriber as Redis
    subscription = await subscribeExpiredEvents({
      redis: subscriber,
      db: parseRedisUrl(config.REDIS_URL).db,
      keys: routingKeys,
      log,
      onExpired,
      onDue,
      onMembers,
      onSubscribed: () => {
        // A restarted Redis may have lost the setting: make sure of the flags before the sweep.
        if (started) void ensureExpiredEvents(node, log)
        onSubscribed()
      }
    })
    const setup = await ensureExpiredEvents(node, log)
    if (!setup.configured) warnEventsNotConfigurable(log, setup.reason)
    eventsConfigurable = setup.configured
  }
  // Tells, without holding up the start, whether the server publishes the events anyway.
  if (!eventsConfigurable) void probeEvents(opts.redis, subscription, keys.prefix, log)
  startPipeline(primary)
  pipelines.follow(keys)
  let latest = keys
  const watch = watchLayout({ redis: opts.redis, keys: () => latest, log, onChange: (k) => { latest = k; pipelines.follow(k) } })
  // Back from an outage of the command connection: what came due meanwhile is claimed now,
  // not at the next safety poll.
  opts.redis.on('ready', () => { if (state === 'running') for (const s of sweepers()) s.sweepAll() })
  // Publishes the events the scripts put in the shards' outboxes (docs/events.md).
  const relay = eventSettings ? startEventRelay({ store, log, maxLen: eventSettings.maxLen }) : undefined
  started = true
  state = 'running'
  activity.start()
  // Scrape-time reads skip Redis while it is away: they would only wait in the offline queue.
  const whileUp = async (read: () => Promise<number>) => {
    if (opts.redis.status !== 'ready') throw new Error('redis is not connected')
    return await read()
  }
  metrics.observe({
    ready: () => readiness().ready,
    running: () => runner.size,
    ownedShards: () => pipelines.all.reduce((n, p) => n + p.pipeline.ownership.owned().length, 0),
    subscriberConnected: () => subscription.connected(),
    pendingHolds: async () => await whileUp(async () => await countPendingHolds(store)),
    deadLetters: async () => await whileUp(async () => await countDeadLetters(store))
  })

  const housekeeping = startHousekeeping({
    store,
    log,
    found: () => sweeper.found,
    stats: () => ({ ...runner.stats, running: runner.size }),
    deadLetterRetentionMs: config.DEAD_LETTER_RETENTION_MS
  })

  let closing: Promise<void> | undefined
  return {
    sweeper,
    runner,
    token: claimant.token,
    metrics,
    httpPort: http?.port,
    readiness,
    subscribedMasters: () => subscribedMasters(),
    async close (timeoutMs = config.SHUTDOWN_TIMEOUT_MS, cause = 'signal') {
      closing ??= (async () => {
        state = 'closing'
        const crashed = cause === 'crash'
        watch.stop()
        const others = pipelines.stopOthers(timeoutMs, crashed)
        const stopped = stopPipeline(primary, store, timeoutMs, crashed)
        await subscription.close()
        const { drained, released } = await stopped
        await others
        await relay?.stop()
        await housekeeping.stop()
        await activity.stop()
        if (!drained) log.warn({ released, cause }, 'handlers still running at the shutdown deadline were given back for another worker to run')
        log.info({ found: sweeper.found, ...runner.stats }, 'expiry worker stopped')
        await closeConnections()
        // Last, so /readyz says "shutting down" for as long as the worker stops.
        await http?.close()
      })()
      return await closing
    }
  }
}

function isCluster (redis: RedisClient): redis is Cluster {
  return redis.isCluster
}

/** Where CONFIG is blocked, tells the operator whether expired events arrive anyway. */
async function probeEvents (redis: RedisClient, events: ExpiredEvents, prefix: string, log: Logger): Promise<void> {
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
