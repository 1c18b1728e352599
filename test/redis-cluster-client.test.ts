import calculateSlot from 'cluster-key-slot'
import t from 'tap'
import { createKeyspace, type KeyFormat } from '../src/keys.js'
import { json, testConfig } from './helpers/app.js'
import { startCluster } from './helpers/cluster.js'
import { factoryApp } from './helpers/replica.js'
import { clusterWorker, recorder, until } from './helpers/worker.js'

/**
 * The API on a Redis Cluster built by the connection factory from
 * REDIS_CLUSTER_NODES: writes with REDIS_WAIT_REPLICAS send WAIT to the
 * master that took each write (never to a random node), and
 * REDIS_READ_FROM=replica runs the no-writes read script on replicas;
 * scripts flushed on every node are loaded again unseen.
 */
const cluster = await startCluster({ masters: 3 })
t.teardown(cluster.stop)
const first = cluster.nodes[0]
if (!first) throw new Error('no cluster nodes')

/** Calls of each command per node, from INFO commandstats. */
async function commandCalls (port: number): Promise<Record<string, number>> {
  const info = await cluster.node(port).info('commandstats')
  const calls: Record<string, number> = {}
  for (const m of info.matchAll(/^cmdstat_([a-z|]+):calls=(\d+)/gm)) calls[m[1] ?? ''] = Number(m[2])
  return calls
}

t.test('WAIT goes to the master of the slot each write went to; GET runs on replicas', async (t) => {
  const config = testConfig('redis://ignored/0', {
    REDIS_CLUSTER_NODES: `${first.host}:${first.port}`,
    REDIS_WAIT_REPLICAS: '1',
    REDIS_WAIT_TIMEOUT_MS: '1000',
    REDIS_READ_FROM: 'replica'
  })
  // Replicas show in CLUSTER SLOTS once they have joined: the reader learns them from there.
  t.ok(await until(async () => {
    const slots = await cluster.node(first.port).call('CLUSTER', 'SLOTS') as unknown[][]
    return slots.length > 0 && slots.every((range) => range.length > 3)
  }, 10_000), 'CLUSTER SLOTS lists a replica for every slot range')
  const app = await factoryApp(config)
  t.teardown(() => app.close())
  const masters = await cluster.masters()
  const before = new Map(await Promise.all(cluster.nodes.map(async (n) => [n.port, await commandCalls(n.port)] as const)))

  const keys = createKeyspace(config.KEY_PREFIX, config.KEY_SHARDS, config.KEY_FORMAT as KeyFormat)
  const expectedWaits = new Map<number, number>()
  const ids = Array.from({ length: 24 }, (_, i) => `cluster-${i}`)
  for (const id of ids) {
    const res = await app.inject({ method: 'POST', url: '/checkout', ...json({ id, ttlMs: 60_000 }) })
    t.equal(res.statusCode, 201, `${id}: acknowledged by a replica`)
    const master = await cluster.masterOfSlot(calculateSlot(keys.order(id).order))
    expectedWaits.set(master, (expectedWaits.get(master) ?? 0) + 1)
  }
  t.ok(expectedWaits.size > 1, `the orders spread over ${expectedWaits.size} masters`)
  for (const id of ids) t.equal((await app.inject({ method: 'GET', url: `/checkout/${id}` })).statusCode, 200)

  const after = new Map(await Promise.all(cluster.nodes.map(async (n) => [n.port, await commandCalls(n.port)] as const)))
  const delta = (port: number, cmd: string) => (after.get(port)?.[cmd] ?? 0) - (before.get(port)?.[cmd] ?? 0)
  for (const m of masters) {
    t.equal(delta(m.port, 'wait'), expectedWaits.get(m.port) ?? 0, `master ${m.port}: one WAIT per write it took`)
  }
  const replicaPorts = masters.flatMap((m) => m.replicas)
  const replicaScripts = replicaPorts.reduce((sum, p) => sum + delta(p, 'eval') + delta(p, 'evalsha'), 0)
  t.equal(replicaScripts, ids.length, 'every GET ran its script on a replica')
  t.same(replicaPorts.map((p) => delta(p, 'wait')), replicaPorts.map(() => 0), 'no WAIT reached a replica')
})

t.test('SCRIPT FLUSH on every node, again and again, under API load and expiring holds: no request or expiry sees it', async (t) => {
  const config = testConfig('redis://ignored/0', { REDIS_CLUSTER_NODES: `${first.host}:${first.port}` })
  const app = await factoryApp(config)
  t.teardown(() => app.close())
  const { calls, handler } = recorder()
  const worker = await clusterWorker(config, cluster, [handler])
  t.teardown(() => worker.close(2000))

  let loading = true
  let flushes = 0
  const flusher = (async () => {
    while (loading) {
      await Promise.all(cluster.nodes.map(async (n) => await cluster.node(n.port).script('FLUSH').catch(() => {})))
      flushes++
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
  })()
  const unexpected: string[] = []
  const expiring: string[] = []
  const client = async (n: number) => {
    for (let i = 0; i < 60; i++) {
      const id = `flush-${n}-${i}`
      const created = await app.inject({ method: 'POST', url: '/checkout', ...json({ id, ttlMs: i % 3 === 0 ? 1000 : 60_000 }) })
      if (created.statusCode !== 201) unexpected.push(`POST ${id}: ${created.statusCode} ${created.body}`)
      else if (i % 3 === 0) expiring.push(id)
      const read = await app.inject(`/checkout/${id}`)
      if (read.statusCode !== 200) unexpected.push(`GET ${id}: ${read.statusCode} ${read.body}`)
      if (i % 3 === 1) {
        const done = await app.inject({ method: 'POST', url: `/checkout/${id}/complete` })
        if (done.statusCode !== 200) unexpected.push(`complete ${id}: ${done.statusCode} ${done.body}`)
      }
    }
  }
  await Promise.all([0, 1, 2].map(client))
  t.ok(await until(() => expiring.every((id) => calls.some((c) => c.id === id)), 15_000), 'every expiry ran')
  loading = false
  await flusher
  t.ok(flushes > 5, `scripts flushed on all ${cluster.nodes.length} nodes ${flushes} times`)
  t.same(unexpected, [], 'every request answered as usual')
  const runs = new Map<string, number>()
  for (const c of calls) runs.set(c.id, (runs.get(c.id) ?? 0) + 1)
  t.same(expiring.filter((id) => runs.get(id) !== 1), [], 'each expiry once')
})
