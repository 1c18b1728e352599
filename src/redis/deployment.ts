import type { ConnectionOptions } from 'node:tls'
import { parseHostPorts, parseNatMap, parseRedisUrl, type Config, type HostPort } from '../config.js'
import type { ConnectionTimeouts } from './options.js'
import { tlsOptions } from './tls.js'

/**
 * Where Redis is and how to reach it, from the configuration, read once at
 * start (the TLS files too). The factory builds every connection from this,
 * so the store and the worker never ask which topology they run on.
 */
export type RedisDeployment = StandaloneDeployment | SentinelDeployment | ClusterDeployment

interface Common {
  /** TLS and the user, password and db of REDIS_URL apply to every node (and replica). */
  tls: ConnectionOptions | undefined
  username: string | undefined
  password: string | undefined
  db: number
  timeouts: ConnectionTimeouts
  readFrom: 'primary' | 'replica'
  /** For log lines: where this is, without credentials. */
  describe: string
}

export interface StandaloneDeployment extends Common {
  mode: 'standalone'
  node: HostPort
  /** A replica (reader endpoint) for REDIS_READ_FROM=replica. */
  replica: HostPort | undefined
}

export interface SentinelDeployment extends Common {
  mode: 'sentinel'
  sentinels: HostPort[]
  master: string
  sentinelPassword: string | undefined
  sentinelTls: boolean
  natMap: Record<string, HostPort> | undefined
}

export interface ClusterDeployment extends Common {
  mode: 'cluster'
  nodes: HostPort[]
  natMap: Record<string, HostPort> | undefined
}

function hostPort (url: URL): HostPort {
  return { host: url.hostname.replace(/^\[|\]$/g, ''), port: url.port === '' ? 6379 : Number(url.port) }
}

const list = (nodes: HostPort[]) => nodes.map((n) => `${n.host}:${n.port}`).join(',')

export function redisDeployment (config: Config): RedisDeployment {
  const target = parseRedisUrl(config.REDIS_URL)
  const url = new URL(config.REDIS_URL)
  const natMap = config.REDIS_NAT_MAP ? parseNatMap(config.REDIS_NAT_MAP) : undefined
  const common: Common = {
    tls: tlsOptions(config, target.tls),
    username: url.username ? decodeURIComponent(url.username) : undefined,
    password: url.password ? decodeURIComponent(url.password) : undefined,
    db: target.db,
    timeouts: {
      connectTimeoutMs: config.REDIS_CONNECT_TIMEOUT_MS,
      commandTimeoutMs: config.REDIS_COMMAND_TIMEOUT_MS,
      retryMaxDelayMs: config.REDIS_RETRY_MAX_DELAY_MS
    },
    readFrom: config.REDIS_READ_FROM,
    describe: ''
  }
  const scheme = target.tls ? 'rediss' : 'redis'
  const unverified = config.REDIS_TLS_SKIP_VERIFY ? ' (server certificate not verified: REDIS_TLS_SKIP_VERIFY)' : ''
  if (config.REDIS_CLUSTER_NODES) {
    const nodes = parseHostPorts(config.REDIS_CLUSTER_NODES)
    return { ...common, mode: 'cluster', nodes, natMap, describe: `${scheme} cluster ${list(nodes)}${unverified}` }
  }
  if (config.REDIS_SENTINELS) {
    const sentinels = parseHostPorts(config.REDIS_SENTINELS)
    return {
      ...common,
      mode: 'sentinel',
      sentinels,
      master: config.REDIS_SENTINEL_MASTER,
      sentinelPassword: config.REDIS_SENTINEL_PASSWORD || undefined,
      sentinelTls: config.REDIS_SENTINEL_TLS,
      natMap,
      describe: `${scheme} sentinel ${config.REDIS_SENTINEL_MASTER}@${list(sentinels)}/${target.db}${unverified}`
    }
  }
  const node = hostPort(url)
  const replica = config.REDIS_REPLICA_URL ? hostPort(new URL(config.REDIS_REPLICA_URL)) : undefined
  return { ...common, mode: 'standalone', node, replica, describe: `${scheme}://${node.host}:${node.port}/${target.db}${unverified}` }
}
