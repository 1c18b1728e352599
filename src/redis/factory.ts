import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis'
import type { HostPort } from '../config.js'
import type { Log, RedisClient } from './connection.js'
import type { ClusterDeployment, RedisDeployment, SentinelDeployment } from './deployment.js'
import { lambdaOptions, retryDelay, roleOptions, type RedisRole } from './options.js'
import { describeFatalConnectionError, isSelectFailure } from './tls.js'

/**
 * Builds every Redis connection of the service from the deployment: the
 * API's, the worker's command and pub/sub connections, a replica reader, and
 * a dedicated connection to one node. Standalone and Sentinel give a `Redis`,
 * a cluster a `Cluster`; the callers only see a RedisClient.
 */
export interface ClientOptions {
  log?: Log | undefined
  /** Shown in CLIENT LIST, which helps an operator tell our connections apart. */
  name?: string | undefined
  /** Called when a command met READONLY (the endpoint now points at a replica) and the connection reconnects. */
  onReadOnly?: (() => void) | undefined
  /** The process is frozen between invocations (AWS Lambda): see lambdaOptions. */
  lambda?: boolean | undefined
}

function nodeOptions (dep: RedisDeployment, role: RedisRole, opts: ClientOptions): RedisOptions {
  return {
    ...roleOptions(role, dep.timeouts, opts.onReadOnly),
    ...(opts.lambda ? lambdaOptions(role, dep.timeouts) : {}),
    connectionName: opts.name ?? `checkout-expiry:${role}`,
    ...(dep.tls ? { tls: dep.tls } : {}),
    ...(dep.username ? { username: dep.username } : {}),
    ...(dep.password ? { password: dep.password } : {}),
    db: dep.db
  }
}

function sentinelOptions (dep: SentinelDeployment, role: 'master' | 'slave'): RedisOptions {
  return {
    sentinels: dep.sentinels,
    name: dep.master,
    role,
    ...(dep.sentinelPassword ? { sentinelPassword: dep.sentinelPassword } : {}),
    ...(dep.sentinelTls ? { enableTLSForSentinelMode: true, sentinelTLS: dep.tls ?? {} } : {}),
    ...(dep.natMap ? { natMap: dep.natMap } : {}),
    sentinelRetryStrategy: retryDelay(dep.timeouts.retryMaxDelayMs),
    // A sentinel that accepts the connection but never answers is skipped for the next one.
    sentinelCommandTimeout: dep.timeouts.connectTimeoutMs,
    // Subscribes to +switch-master, so a failover is followed at once rather than at the next reconnect.
    failoverDetector: true
  }
}

function clusterOptions (dep: ClusterDeployment, role: RedisRole, opts: ClientOptions, scaleReads: 'master' | 'slave'): ClusterOptions {
  const { retryStrategy: _perNode, enableOfflineQueue, ...redisOptions } = nodeOptions(dep, role, opts)
  return {
    redisOptions,
    enableOfflineQueue: enableOfflineQueue ?? true,
    enableAutoPipelining: redisOptions.enableAutoPipelining ?? false,
    scaleReads,
    clusterRetryStrategy: retryDelay(dep.timeouts.retryMaxDelayMs),
    slotsRefreshTimeout: Math.min(dep.timeouts.connectTimeoutMs, 5000),
    ...(dep.natMap ? { natMap: dep.natMap } : {}),
    // With TLS, connect to startup nodes by their names, not the addresses they
    // resolve to: managed clusters (ElastiCache) issue certificates for the names.
    ...(dep.tls ? { dnsLookup: (address: string, callback: (err: null, address: string) => void) => callback(null, address) } : {})
  }
}

/** The connection of one role: the primary (standalone or via Sentinel), or the whole cluster. */
export function createRedisClient (dep: RedisDeployment, role: RedisRole, opts: ClientOptions = {}): RedisClient {
  const client = dep.mode === 'cluster'
    ? new Cluster(dep.nodes, clusterOptions(dep, role, opts, 'master'))
    : new Redis({
      ...nodeOptions(dep, role, opts),
      ...(dep.mode === 'sentinel' ? sentinelOptions(dep, 'master') : dep.node)
    })
  return watch(client, role, opts.log)
}

/**
 * The pub/sub connection for keyspace events on one node deployments
 * (standalone, Sentinel); undefined on a cluster, where the worker opens one
 * per master with createNodeRedis.
 */
export function createSubscriber (dep: RedisDeployment, opts: ClientOptions = {}): Redis | undefined {
  if (dep.mode === 'cluster') return undefined
  return createRedisClient(dep, 'subscriber', opts) as Redis
}

export interface WorkerConnections {
  /** The command connection (role `worker`). */
  redis: RedisClient
  /** The keyspace-event connection on one node deployments; undefined on a cluster. */
  subscriber: Redis | undefined
  /** On a cluster: a subscriber connection to one master, with the same TLS and credentials. */
  connectNode: (node: HostPort) => Redis
}

/**
 * The worker's connections. READONLY on the command connection means the
 * endpoint now leads to a replica (a managed failover moved the DNS name):
 * the subscriber, which never writes and so never hears it, reconnects too,
 * or it would listen to a node that publishes no expired events.
 */
export function createWorkerConnections (dep: RedisDeployment, opts: { log?: Log | undefined } = {}): WorkerConnections {
  const subscriber = createSubscriber(dep, { log: opts.log, name: 'checkout-expiry:subscriber' })
  const redis = createRedisClient(dep, 'worker', {
    log: opts.log, name: 'checkout-expiry:worker', onReadOnly: () => subscriber?.disconnect(true)
  })
  const connectNode = (node: HostPort) => createNodeRedis(dep, node, 'subscriber', { log: opts.log, name: 'checkout-expiry:subscriber' })
  return { redis, subscriber, connectNode }
}

/** A dedicated connection to one node of the deployment, with its TLS and credentials (a cluster master's subscriber). */
export function createNodeRedis (dep: RedisDeployment, node: HostPort, role: RedisRole, opts: ClientOptions = {}): Redis {
  const options = nodeOptions(dep, role, opts)
  // Cluster nodes only have db 0.
  return watch(new Redis({ ...options, ...node, db: dep.mode === 'cluster' ? 0 : options.db }), role, opts.log)
}

/**
 * Where GET /checkout/:id reads with REDIS_READ_FROM=replica: a replica found
 * by Sentinel, the cluster's replicas (scripts marked read-only go there), or
 * the standalone REDIS_REPLICA_URL. Undefined when reads go to the primary.
 */
export function createReplicaReader (dep: RedisDeployment, opts: ClientOptions = {}): RedisClient | undefined {
  if (dep.readFrom !== 'replica') return undefined
  const name = opts.name ?? 'checkout-expiry:api-reader'
  if (dep.mode === 'cluster') {
    // Without auto-pipelining: it files a script under the master's pipeline (ioredis
    // only knows built-in commands as read-only), where its read-only flag is lost.
    const options = { ...clusterOptions(dep, 'api', { ...opts, name }, 'slave'), enableAutoPipelining: false }
    return watch(new Cluster(dep.nodes, options), 'api', opts.log)
  }
  if (dep.mode === 'sentinel') {
    return watch(new Redis({ ...nodeOptions(dep, 'api', { ...opts, name }), ...sentinelOptions(dep, 'slave') }), 'api', opts.log)
  }
  if (!dep.replica) return undefined
  return createNodeRedis(dep, dep.replica, 'api', { ...opts, name })
}

/** Logs the first error of an outage and the recovery, once each; without a listener ioredis prints every failure. */
export function watch<C extends RedisClient> (client: C, role: RedisRole, log: Log | undefined): C {
  let down = false
  let connected = false
  client.on('error', (err: Error) => {
    if (isSelectFailure(err)) {
      // A connection whose SELECT failed goes on in database 0: close it for good, so every
      // command fails (503) instead of writing to another database. Before the first
      // connection, connectOrRefuse stops the process with one line instead.
      if (connected) log?.error({ err: { message: describeFatalConnectionError(err) }, role }, 'redis connection closed: it cannot use the database in REDIS_URL')
      client.disconnect()
      return
    }
    if (!log) return
    // Before the first connection an untrusted certificate or a refused password
    // stops the process with one line (connectOrRefuse): not a warning as well.
    if (!connected && describeFatalConnectionError(err)) return
    if (!down) log.warn({ err: { message: err.message }, role }, 'redis connection error')
    down = true
  })
  client.on('ready', () => {
    if (down) log?.info({ role }, 'redis connection restored')
    down = false
    connected = true
  })
  return client
}
