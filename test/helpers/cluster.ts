import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Cluster, Redis } from 'ioredis'
import { freePort, waitForRedis } from './redis.js'

/**
 * A real Redis Cluster for one test file: `masters` redis-server processes
 * with one replica each on loopback ports, joined with
 * `redis-cli --cluster create … --cluster-replicas 1`. A short
 * cluster-node-timeout makes a killed master fail over in a few seconds.
 */
export interface ClusterNode {
  host: string
  port: number
}

export interface TestCluster {
  /** Every node, in start order. */
  nodes: ClusterNode[]
  /** A Cluster client (closed by stop()). */
  client: (opts?: { api?: boolean }) => Cluster
  /** A plain connection to one node (closed by stop()). */
  node: (port: number) => Redis
  /** Opens a dedicated connection to one node, as the worker's connectNode does (closed by stop() if still open). */
  connectNode: (node: ClusterNode) => Redis
  /** Ports of the current masters, each with the slot ranges it serves. */
  masters: () => Promise<Array<{ port: number, slots: Array<[number, number]>, replicas: number[] }>>
  /** The port of the master serving a slot. */
  masterOfSlot: (slot: number) => Promise<number>
  /** SIGKILLs one node. */
  kill: (port: number) => Promise<void>
  /** Resolves once every slot is served by a live master and the cluster says ok on every live node. */
  waitHealthy: (timeoutMs?: number) => Promise<void>
  stop: () => Promise<void>
}

export interface TestClusterOptions {
  masters?: number
  nodeTimeoutMs?: number
  /** Told of every redis-server started, so a benchmark can kill them all if it is interrupted. */
  onSpawn?: (proc: ChildProcess) => void
}

const HOST = '127.0.0.1'

export async function startCluster (opts: TestClusterOptions = {}): Promise<TestCluster> {
  const masters = opts.masters ?? 3
  const dir = mkdtempSync(join(tmpdir(), 'ce-cluster-'))
  const procs = new Map<number, ChildProcess>()
  const clients: Array<Redis | Cluster> = []
  const nodes: ClusterNode[] = []
  const stop = async () => {
    for (const c of clients) c.disconnect()
    await Promise.all([...procs.values()].map(async (p) => await halt(p)))
    rmSync(dir, { recursive: true, force: true })
  }
  try {
    for (let i = 0; i < masters * 2; i++) {
      const port = await freePort()
      // The bus port is normally port + 10000, which may be taken or past 65535 for a high free port.
      const busPort = await freePort()
      const nodeDir = join(dir, String(port))
      mkdirSync(nodeDir)
      const proc = spawn('redis-server', [
        '--port', String(port), '--bind', HOST, '--dir', nodeDir, '--save', '', '--appendonly', 'no',
        '--cluster-enabled', 'yes', '--cluster-config-file', join(nodeDir, 'nodes.conf'), '--cluster-port', String(busPort),
        '--cluster-node-timeout', String(opts.nodeTimeoutMs ?? 1000),
        // A replica may always take over, however long it was cut off: the tests decide when masters die.
        '--cluster-replica-validity-factor', '0',
        // A replica's first sync starts at once instead of after 5 s.
        '--repl-diskless-sync-delay', '0', '--logfile', join(nodeDir, 'log')
      ], { stdio: 'ignore' })
      procs.set(port, proc)
      opts.onSpawn?.(proc)
      nodes.push({ host: HOST, port })
    }
    await Promise.all(nodes.map(async (n) => await waitForRedis(n.port)))
    const created = spawnSync('redis-cli', [
      '--cluster', 'create', ...nodes.map((n) => `${n.host}:${n.port}`), '--cluster-replicas', '1', '--cluster-yes'
    ], { encoding: 'utf8', timeout: 30_000 })
    if (created.status !== 0) throw new Error(`redis-cli --cluster create failed:\n${created.stdout}\n${created.stderr}`)
  } catch (err) {
    await stop()
    throw err
  }

  const node = (port: number) => {
    const c = new Redis(port, HOST, { protocol: 2, maxRetriesPerRequest: null, retryStrategy: () => 100 })
    c.on('error', () => {})
    clients.push(c)
    return c
  }
  const live = () => nodes.filter((n) => procs.get(n.port)?.exitCode === null && procs.get(n.port)?.signalCode === null)
  /** One command round on a short-lived connection to one node. */
  const ask = async <T> (port: number, fn: (c: Redis) => Promise<T>): Promise<T> => {
    const c = new Redis(port, HOST, { protocol: 2, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 1000 })
    c.on('error', () => {})
    try {
      await c.connect()
      return await fn(c)
    } finally {
      c.disconnect()
    }
  }
  /** Asks the live nodes in turn until one answers. */
  const query = async <T> (fn: (c: Redis) => Promise<T>): Promise<T> => {
    let last: unknown
    for (const n of live()) {
      try {
        return await ask(n.port, fn)
      } catch (err) {
        last = err
      }
    }
    throw new Error(`no cluster node answered: ${String(last)}`)
  }
  /** Each live replica's own view of whom it follows and whether it is in sync: faster and surer than gossip. */
  const replicaLinks = async () => (await Promise.all(live().map(async (n) => {
    const info = String(await ask(n.port, async (c) => await c.info('replication')).catch(() => ''))
    if (!info.includes('role:slave')) return undefined
    return { port: n.port, master: Number(/master_port:(\d+)/.exec(info)?.[1]), up: info.includes('master_link_status:up') }
  }))).filter((r) => r !== undefined)
  const masterList = async () => {
    const shards = await query(async (c) => await c.call('CLUSTER', 'SLOTS') as Array<[number, number, [string, number, string]]>)
    const links = await replicaLinks()
    const byPort = new Map<number, { port: number, slots: Array<[number, number]>, replicas: number[] }>()
    for (const [start, end, master] of shards) {
      const port = Number(master[1])
      const entry = byPort.get(port) ?? { port, slots: [], replicas: links.filter((l) => l.master === port).map((l) => l.port) }
      entry.slots.push([start, end])
      byPort.set(port, entry)
    }
    return [...byPort.values()].sort((x, y) => x.port - y.port)
  }
  const waitHealthy = async (timeoutMs = 30_000) => {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const ok = await (async () => {
        const ports = new Set(live().map((n) => n.port))
        const ms = await masterList()
        const covered = ms.filter((m) => ports.has(m.port)).reduce((sum, m) => sum + m.slots.reduce((s, [a, b]) => s + b - a + 1, 0), 0)
        if (covered !== 16384) return false
        for (const n of live()) {
          const info = String(await ask(n.port, async (c) => await c.call('CLUSTER', 'INFO')))
          if (!info.includes('cluster_state:ok')) return false
        }
        return true
      })().catch(() => false)
      if (ok) return
      if (Date.now() > deadline) throw new Error(`the cluster was not healthy within ${timeoutMs} ms`)
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  }
  try {
    await waitHealthy()
    // Replicas must be in sync before a test relies on them taking over.
    const deadline = Date.now() + 20_000
    while ((await replicaLinks()).filter((l) => l.up).length < masters) {
      if (Date.now() > deadline) throw new Error('the replicas did not sync')
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  } catch (err) {
    await stop()
    throw err
  }

  return {
    nodes,
    node,
    client (o = {}) {
      const c = new Cluster(nodes.slice(0, 3), {
        enableAutoPipelining: true,
        enableOfflineQueue: o.api !== true,
        redisOptions: o.api === true
          ? { protocol: 2, maxRetriesPerRequest: 0, commandTimeout: 2000 }
          : { protocol: 2, maxRetriesPerRequest: null }
      })
      c.on('error', () => {})
      c.on('node error', () => {})
      clients.push(c)
      return c
    },
    connectNode (n) {
      const c = new Redis(n.port, n.host, { protocol: 2, maxRetriesPerRequest: null, autoResubscribe: true, retryStrategy: () => 200 })
      c.on('error', () => {})
      clients.push(c)
      return c
    },
    masters: masterList,
    async masterOfSlot (slot) {
      const m = (await masterList()).find((x) => x.slots.some(([a, b]) => slot >= a && slot <= b))
      if (!m) throw new Error(`no master serves slot ${slot}`)
      return m.port
    },
    async kill (port) {
      const p = procs.get(port)
      if (p) await halt(p)
    },
    waitHealthy,
    stop
  }
}

async function halt (p: ChildProcess): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return
  const exited = new Promise((resolve) => p.once('exit', resolve))
  p.kill('SIGKILL')
  await exited
}
