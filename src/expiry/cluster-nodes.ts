import type { Cluster, Redis } from 'ioredis'
import type { Log } from '../redis/connection.js'
import { ensureExpiredEvents } from './notifications.js'

/**
 * What the cluster subscriber asks of individual nodes: their
 * notify-keyspace-events setting (on every node where allowed, replicas too,
 * so one promoted later publishes from its first second) and whether the
 * masters have changed. Nodes are named `host:port` as the client sees them
 * (after its NAT map).
 */
export interface ClusterNodeSettingsOptions {
  cluster: Cluster
  connectNode: (node: { host: string, port: number }) => Redis
  log: Log
  /** A node refused CONFIG (managed Redis): reported once per node. */
  onNotConfigurable: (node: string, reason: string) => void
}

export interface ClusterNodeSettings {
  /** Makes sure one node publishes expired events. */
  configure: (key: string) => Promise<void>
  /** In the background, one run at a time: every node the masters or the client name that is not configured yet. */
  configureAll: (masters: Redis[]) => void
  /** Whether a master's CLUSTER SLOTS names other masters than the client knows (or no master answers). */
  mastersChanged: () => Promise<boolean>
  /** Resolves once a background run has finished. */
  settled: () => Promise<void>
}

/** A node that does not answer within this is left for the next topology read. */
export const NODE_TIMEOUT_MS = 3000
/** A node that did not answer CONFIG is asked again after this, not at every topology read. */
const UNREACHABLE_RETRY_MS = 30_000

export async function within<T> (ms: number, work: Promise<T>): Promise<T | 'timeout'> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<'timeout'>((resolve) => { timer = setTimeout(() => resolve('timeout'), ms) })
  try {
    return await Promise.race([work, late])
  } finally {
    clearTimeout(timer)
  }
}

export const nodeKey = (n: Redis) => `${n.options.host ?? '127.0.0.1'}:${n.options.port ?? 6379}`

export function clusterNodeSettings (opts: ClusterNodeSettingsOptions): ClusterNodeSettings {
  const { cluster, log } = opts
  const configured = new Set<string>()
  const refused = new Set<string>()
  const unreachable = new Map<string, number>()
  let running: Promise<void> | undefined

  const mapped = (key: string): string => {
    const natMap = cluster.options.natMap
    const to = typeof natMap === 'function' ? natMap(key) : natMap?.[key]
    return to ? `${to.host}:${to.port}` : key
  }

  /**
   * CONFIG on a short-lived connection of its own: a subscribed connection
   * cannot send it, and the client's pool may not know the replicas yet.
   */
  const configure = async (key: string): Promise<void> => {
    const [host = '127.0.0.1', port = '6379'] = key.split(/:(?=\d+$)/)
    const conn = opts.connectNode({ host, port: Number(port) })
    try {
      const setup = await within(NODE_TIMEOUT_MS, ensureExpiredEvents(conn, log))
      // A node that is away is not refusing: it is configured once it is back.
      if (setup === 'timeout' || (!setup.configured && conn.status !== 'ready')) {
        unreachable.set(key, Date.now() + UNREACHABLE_RETRY_MS)
        return
      }
      unreachable.delete(key)
      if (setup.configured) {
        configured.add(key)
        refused.delete(key)
      } else if (!refused.has(key)) {
        refused.add(key)
        opts.onNotConfigurable(key, setup.reason)
      }
    } finally {
      conn.disconnect()
    }
  }

  /** The replicas a master serves now, as it says itself: gossip may not have told the client yet. */
  const replicasOf = async (master: Redis): Promise<string[]> => {
    const info = String(await within(NODE_TIMEOUT_MS, master.info('replication')).catch(() => ''))
    return [...info.matchAll(/^slave\d+:ip=([^,]+),port=(\d+)/gm)].map((m) => mapped(`${m[1]}:${m[2]}`))
  }

  const configureAll = async (masters: Redis[]): Promise<void> => {
    // 'wait': the client connects to a node at its first command; asking connects it.
    const replicas = (await Promise.all(masters.filter((m) => m.status === 'ready' || m.status === 'wait').map(replicasOf))).flat()
    await Promise.all([...new Set([...replicas, ...cluster.nodes('all').map(nodeKey)])]
      .filter((key) => !configured.has(key) && !refused.has(key) && (unreachable.get(key) ?? 0) <= Date.now())
      .map(configure))
  }

  return {
    configure,
    configureAll (masters) {
      running ??= configureAll(masters).finally(() => { running = undefined })
    },
    async mastersChanged () {
      const known = cluster.nodes('master')
      const asked = known.find((n) => n.status === 'ready')
      if (!asked) return true
      const slots = await within(NODE_TIMEOUT_MS, asked.call('CLUSTER', 'SLOTS') as Promise<Array<[number, number, [string, number]]>>)
        .catch(() => 'timeout' as const)
      if (slots === 'timeout') return true
      const named = new Set(slots.map(([, , master]) => mapped(`${master[0]}:${master[1]}`)))
      const current = new Set(known.map(nodeKey))
      return named.size !== current.size || [...named].some((key) => !current.has(key))
    },
    async settled () {
      await running
    }
  }
}
