import type { Cluster, Redis } from 'ioredis'
import type { Keyspace } from '../keys.js'
import type { Log } from '../redis/connection.js'
import { ensureExpiredEvents } from './notifications.js'
import type { ExpiredEvents } from './subscriber.js'

/**
 * Expired events on a Redis Cluster. Keyspace events stay on the node where
 * the key expired (sharded pub/sub does not carry them), so this listens on
 * every master, each on a dedicated connection, and follows the topology:
 * a master that appears (failover, a new node) is subscribed, one that
 * leaves is dropped. Every new subscription is followed by onSubscribed, so
 * the worker sweeps every shard before trusting events from that node.
 */
export interface ClusterExpiredEventsOptions {
  cluster: Cluster
  /** Opens a dedicated connection to one node (TLS and ACL applied by the caller). */
  connectNode: (node: { host: string, port: number }) => Redis
  keys: Keyspace
  log: Log
  onExpired: (shard: number, id: string) => void
  /** A master was (re)subscribed: events published before that may be gone. */
  onSubscribed: () => void
  /** A node refused CONFIG (managed Redis): reported once per node. */
  onNotConfigurable: (node: string, reason: string) => void
  /** How often the cluster's topology is read again, besides the client's own refreshes (ms). */
  refreshMs?: number
}

export interface ClusterExpiredEvents extends ExpiredEvents {
  /** The masters subscribed to now, `host:port`. */
  masters: () => string[]
  /** Resolves once the topology known now is subscribed. */
  synced: () => Promise<void>
}

// A cluster has database 0 only.
const PATTERN = '__keyevent@0__:expired'

interface NodeSubscription {
  conn: Redis
  subscribed: boolean
}

/** A node that does not answer within this is left for the next topology read. */
const NODE_TIMEOUT_MS = 3000
const UNREACHABLE_RETRY_MS = 30_000
const RESUBSCRIBE_MS = 1000

async function within<T> (ms: number, work: Promise<T>): Promise<T | 'timeout'> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<'timeout'>((resolve) => { timer = setTimeout(() => resolve('timeout'), ms) })
  try {
    return await Promise.race([work, late])
  } finally {
    clearTimeout(timer)
  }
}

const nodeKey = (n: Redis) => `${n.options.host ?? '127.0.0.1'}:${n.options.port ?? 6379}`

export async function subscribeClusterExpiredEvents (opts: ClusterExpiredEventsOptions): Promise<ClusterExpiredEvents> {
  const { cluster, log } = opts
  const subs = new Map<string, NodeSubscription>()
  const configured = new Set<string>()
  const refused = new Set<string>()
  const waiting = new Map<string, () => void>()
  let closed = false

  const onMessage = (_pattern: string, _channel: string, key: string) => {
    const parsed = opts.keys.parseTimerKey(key)
    if (parsed) opts.onExpired(parsed.shard, parsed.id)
    else waiting.get(key)?.()
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

  /**
   * The replicas a master serves now, as it says itself (gossip may not have
   * told the client yet), at the addresses the client's NAT map gives them.
   */
  const replicasOf = async (master: Redis): Promise<string[]> => {
    const info = String(await within(NODE_TIMEOUT_MS, master.info('replication')).catch(() => ''))
    return [...info.matchAll(/^slave\d+:ip=([^,]+),port=(\d+)/gm)].map((m) => mapped(`${m[1]}:${m[2]}`))
  }
  const mapped = (key: string): string => {
    const natMap = cluster.options.natMap
    const to = typeof natMap === 'function' ? natMap(key) : natMap?.[key]
    return to ? `${to.host}:${to.port}` : key
  }
  /** Nodes that did not answer CONFIG: tried again after a pause, not at every topology read. */
  const unreachable = new Map<string, number>()

  /** Subscribes on one master; true once subscribed. Never holds up the other masters. */
  const subscribe = async (key: string, master: Redis): Promise<boolean> => {
    const { host, port } = master.options
    const conn = opts.connectNode({ host: host ?? '127.0.0.1', port: port ?? 6379 })
    const sub: NodeSubscription = { conn, subscribed: false }
    subs.set(key, sub)
    conn.on('pmessage', onMessage)
    // ioredis resubscribes by itself after a reconnect and then emits 'ready'. A restarted
    // node may have lost the setting and the events published meanwhile are gone.
    conn.on('ready', () => {
      if (!sub.subscribed || closed || subs.get(key) !== sub) return
      log.info({ node: key, pattern: PATTERN }, 'resubscribed to expired events on a cluster master')
      void configure(key).finally(() => opts.onSubscribed())
    })
    const [done] = await Promise.all([
      within(NODE_TIMEOUT_MS, conn.psubscribe(PATTERN)).catch((err: unknown) => err),
      configure(key)
    ])
    if (done === 'timeout' || done instanceof Error || subs.get(key) !== sub) {
      // The node is away (a dead master the client still lists): the next topology read
      // subscribes again, or drops it once it is no master.
      log.debug({ err: done, node: key }, 'could not subscribe to a cluster master yet')
      if (subs.get(key) === sub) subs.delete(key)
      conn.disconnect()
      return false
    }
    sub.subscribed = true
    log.info({ node: key, pattern: PATTERN }, 'subscribed to expired events on a cluster master')
    return true
  }
  /** Subscriptions under way, so the first start can wait for them. */
  const pending = new Set<Promise<boolean>>()

  const drop = (key: string, sub: NodeSubscription) => {
    subs.delete(key)
    sub.conn.disconnect()
    if (sub.subscribed) log.info({ node: key }, 'no longer a cluster master: its expired-events subscription is closed')
  }
  /**
   * When a subscription last failed, per node. A dead master keeps coming
   * back into the client's list (redirections still name it until its
   * replica is promoted): it is tried again once a second, not at every change.
   */
  const failedAt = new Map<string, number>()

  let configuringReplicas: Promise<void> | undefined
  /** Brings the subscriptions in line with the masters the client knows now. */
  const syncOnce = async (): Promise<void> => {
    const masters = new Map(cluster.nodes('master').map((n) => [nodeKey(n), n]))
    // Until the client knows its masters (connecting, or every node away) nothing changes.
    if (masters.size === 0) return
    for (const [key, sub] of subs) if (!masters.has(key)) drop(key, sub)
    for (const [key, node] of masters) {
      if (subs.has(key) || Date.now() - (failedAt.get(key) ?? 0) < RESUBSCRIBE_MS) continue
      const p = subscribe(key, node)
      pending.add(p)
      void p.then((ok) => {
        pending.delete(p)
        if (ok) failedAt.delete(key)
        else failedAt.set(key, Date.now())
        // Events published on this node before now were never seen: sweep every shard.
        if (ok && !closed) opts.onSubscribed()
      })
    }
    // Replicas too, where allowed, so one promoted later publishes from its first second. In the
    // background: a node that is away must not hold up the subscription of a new master.
    configuringReplicas ??= configureReplicas([...masters.values()]).finally(() => { configuringReplicas = undefined })
  }

  const configureReplicas = async (masters: Redis[]): Promise<void> => {
    // 'wait': the client connects to a node at its first command; asking connects it.
    const replicas = (await Promise.all(masters.filter((m) => m.status === 'ready' || m.status === 'wait').map(replicasOf))).flat()
    await Promise.all([...new Set([...replicas, ...cluster.nodes('all').map(nodeKey)])]
      .filter((key) => !configured.has(key) && !refused.has(key) && (unreachable.get(key) ?? 0) <= Date.now())
      .map(async (key) => await configure(key)))
  }

  // One sync at a time; a change seen during one runs another right after.
  let running: Promise<void> | undefined
  let again = false
  const sync = async (): Promise<void> => {
    if (closed) return
    if (running) {
      again = true
      return await running
    }
    running = (async () => {
      do {
        again = false
        await syncOnce().catch((err: unknown) => log.warn({ err }, 'could not follow the cluster topology; retrying'))
      } while (again && !closed)
    })().finally(() => { running = undefined })
    return await running
  }

  /** Whether a live master's CLUSTER SLOTS names other masters than the client knows (or none answers). */
  const mastersChanged = async (): Promise<boolean> => {
    const known = cluster.nodes('master')
    const asked = known.find((n) => n.status === 'ready')
    if (!asked) return true
    const slots = await within(NODE_TIMEOUT_MS, asked.call('CLUSTER', 'SLOTS') as Promise<Array<[number, number, [string, number]]>>)
      .catch(() => 'timeout' as const)
    if (slots === 'timeout') return true
    const named = new Set(slots.map(([, , master]) => mapped(`${master[0]}:${master[1]}`)))
    const current = new Set(known.map(nodeKey))
    return named.size !== current.size || [...named].some((key) => !current.has(key))
  }

  const onTopology = () => { void sync() }
  cluster.on('refresh', onTopology)
  cluster.on('+node', onTopology)
  cluster.on('-node', onTopology)
  // The client refreshes its slot map on redirections and lost nodes only; a
  // failover with no traffic to the slots moved would go unseen without this.
  // Its refresh opens a new connection each time, so it runs only when the
  // masters one node names (over a connection the client keeps) differ.
  const refresher = setInterval(() => {
    void mastersChanged().then((changed) => {
      if (changed && cluster.status === 'ready') cluster.refreshSlotsCache()
    })
    void sync()
  }, opts.refreshMs ?? 1000)
  refresher.unref()

  await sync()
  await Promise.all([...pending])

  return {
    async waitForKey (key, timeoutMs) {
      return await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => { waiting.delete(key); resolve(false) }, timeoutMs)
        timer.unref()
        waiting.set(key, () => { clearTimeout(timer); waiting.delete(key); resolve(true) })
      })
    },
    connected () {
      const masters = cluster.nodes('master').map(nodeKey)
      return masters.length > 0 && masters.every((key) => {
        const sub = subs.get(key)
        return sub !== undefined && sub.subscribed && sub.conn.status === 'ready'
      })
    },
    masters: () => [...subs].filter(([, sub]) => sub.subscribed).map(([key]) => key).sort(),
    async synced () {
      await sync()
      await Promise.all([...pending])
    },
    async close () {
      closed = true
      clearInterval(refresher)
      cluster.off('refresh', onTopology)
      cluster.off('+node', onTopology)
      cluster.off('-node', onTopology)
      await running
      await Promise.all([...pending])
      await configuringReplicas
      await Promise.all([...subs.values()].map(async ({ conn }) => {
        if (conn.status === 'ready') await conn.quit().catch(() => conn.disconnect())
        else conn.disconnect()
      }))
      subs.clear()
    }
  }
}
