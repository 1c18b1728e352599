import type { Cluster, Redis } from 'ioredis'
import type { Keyspace } from '../keys.js'
import type { Log } from '../redis/connection.js'
import { clusterNodeSettings, nodeKey, NODE_TIMEOUT_MS, within } from './cluster-nodes.js'
import { dueMessageRouter, expiredKeyRouter, type ExpiredEvents } from './subscriber.js'

/**
 * Expired events on a Redis Cluster. Keyspace events stay on the node where
 * the key expired (sharded pub/sub does not carry them), so this listens on
 * every master, each on a dedicated connection, and follows the topology:
 * a master that appears (failover, a new node) is subscribed, one that
 * leaves is dropped. Every new subscription is followed by onSubscribed, so
 * the worker sweeps every shard before trusting events from that node.
 * Each connection also hears `<prefix>due` (see subscriber.ts); a cluster
 * delivers that channel's messages on every node, so any master suffices
 * and a repeated message only re-arms the same timer.
 */
export interface ClusterExpiredEventsOptions {
  cluster: Cluster
  /** Opens a dedicated connection to one node (TLS and ACL applied by the caller). */
  connectNode: (node: { host: string, port: number }) => Redis
  keys: Keyspace
  log: Log
  onExpired: (shard: number, id: string) => void
  /** Something in the shard is due at `at` (Redis server time, ms). */
  onDue: (shard: number, at: number) => void
  /** The workers changed: rebalance the shards now. */
  onMembers?: (() => void) | undefined
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

/** A master whose subscription failed (it is away) is tried again after this. */
const RESUBSCRIBE_MS = 1000

export async function subscribeClusterExpiredEvents (opts: ClusterExpiredEventsOptions): Promise<ClusterExpiredEvents> {
  const { cluster, log } = opts
  const subs = new Map<string, NodeSubscription>()
  const router = expiredKeyRouter(opts.keys, opts.onExpired)
  const onDueMessage = dueMessageRouter(opts.keys, opts.onDue, opts.onMembers)
  let closed = false

  const nodes = clusterNodeSettings({ cluster, connectNode: opts.connectNode, log, onNotConfigurable: opts.onNotConfigurable })
  const { configure } = nodes

  /** Subscribes on one master; true once subscribed. Never holds up the other masters. */
  const subscribe = async (key: string, master: Redis): Promise<boolean> => {
    const { host, port } = master.options
    const conn = opts.connectNode({ host: host ?? '127.0.0.1', port: port ?? 6379 })
    const sub: NodeSubscription = { conn, subscribed: false }
    subs.set(key, sub)
    conn.on('pmessage', router.onMessage)
    conn.on('message', onDueMessage)
    // ioredis resubscribes by itself after a reconnect and then emits 'ready'. A restarted
    // node may have lost the setting and the events published meanwhile are gone.
    conn.on('ready', () => {
      if (!sub.subscribed || closed || subs.get(key) !== sub) return
      log.info({ node: key, pattern: PATTERN }, 'resubscribed to expired events on a cluster master')
      void configure(key).finally(() => opts.onSubscribed())
    })
    const [done] = await Promise.all([
      within(NODE_TIMEOUT_MS, Promise.all([conn.subscribe(opts.keys.dueChannel), conn.psubscribe(PATTERN)])).catch((err: unknown) => err),
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
    nodes.configureAll([...masters.values()])
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

  const onTopology = () => { void sync() }
  cluster.on('refresh', onTopology)
  cluster.on('+node', onTopology)
  cluster.on('-node', onTopology)
  // The client refreshes its slot map on redirections and lost nodes only; a
  // failover with no traffic to the slots moved would go unseen without this.
  // Its refresh opens a new connection each time, so it runs only when the
  // masters one node names (over a connection the client keeps) differ.
  const refresher = setInterval(() => {
    void nodes.mastersChanged().then((changed) => {
      if (changed && cluster.status === 'ready') cluster.refreshSlotsCache()
    })
    void sync()
  }, opts.refreshMs ?? 1000)
  refresher.unref()

  await sync()
  await Promise.all([...pending])

  return {
    waitForKey: router.waitForKey,
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
      await nodes.settled()
      await Promise.all([...subs.values()].map(async ({ conn }) => {
        if (conn.status === 'ready') await conn.quit().catch(() => conn.disconnect())
        else conn.disconnect()
      }))
      subs.clear()
    }
  }
}
