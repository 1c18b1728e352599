import t from 'tap'
import type { ExpiryWorker } from '../src/expiry/worker.js'
import { json } from './helpers/app.js'
import { startCluster } from './helpers/cluster.js'
import { clusterStack, startWriteLoop } from './helpers/cluster-load.js'
import { until } from './helpers/worker.js'

/**
 * A manual failover (`CLUSTER FAILOVER` on a replica) in the middle of the
 * expiry window: the API keeps accepting holds (errors for at most 2 s),
 * both workers follow the new master, and every acknowledged hold is
 * handled exactly once.
 */
const cluster = await startCluster()
t.teardown(cluster.stop)
const url = `redis://127.0.0.1:${cluster.nodes[0]!.port}/0`
const sleep = async (ms: number) => await new Promise((resolve) => setTimeout(resolve, ms))

/** Counts full sweeps: every new subscription must be followed by one. */
function countSweeps (worker: ExpiryWorker): () => number {
  let sweeps = 0
  const sweepAll = worker.sweeper.sweepAll.bind(worker.sweeper)
  worker.sweeper.sweepAll = () => {
    sweeps++
    sweepAll()
  }
  return () => sweeps
}

t.test('CLUSTER FAILOVER during the expiry window: none lost, none duplicated, the API writes come back', async (t) => {
  const { app, recs, workers } = await clusterStack(t, cluster, url)
  const sweeps = workers.map(countSweeps)

  // 1,200 holds due from 2 s to 8 s from now, then a live stream of writes through the failover.
  const total = 1200
  const ids = Array.from({ length: total }, (_v, i) => `fo-${i}`)
  for (let i = 0; i < total; i += 100) {
    await Promise.all(ids.slice(i, i + 100).map(async (id, j) => {
      const res = await app.inject({ method: 'POST', url: '/checkout', ...json({ id, ttlMs: 2000 + Math.floor(((i + j) / total) * 6000) }) })
      if (res.statusCode !== 201) throw new Error(`${id}: ${res.statusCode}`)
    }))
  }
  const loop = startWriteLoop(app, { prefix: 'fo-live', everyMs: 20, ttlMs: () => 2000, max: 300 })
  await sleep(2500)

  const [victim] = await cluster.masters()
  const replica = victim!.replicas[0]!
  const before = workers.map((w) => w.subscribedMasters())
  const sweepsBefore = sweeps.map((s) => s())
  const faultAt = Date.now()
  t.equal(await cluster.node(replica).call('CLUSTER', 'FAILOVER'), 'OK')
  t.ok(await until(async () => String(await cluster.node(replica).info('replication')).includes('role:master'), 10_000, 50), 'the replica took over')
  const promotedMs = Date.now() - faultAt
  const followed = await until(() => workers.every((w) => w.subscribedMasters().includes(`127.0.0.1:${replica}`) &&
    !w.subscribedMasters().includes(`127.0.0.1:${victim!.port}`) && w.readiness().ready), 5000, 50)
  const followedMs = Date.now() - faultAt
  t.ok(followed, `both workers subscribed on the new master and dropped the old one (${before[0]?.join(', ')} → ${workers[0]?.subscribedMasters().join(', ')})`)
  t.ok(sweeps.every((s, i) => s() > sweepsBefore[i]!), 'each swept every shard after subscribing to the new master')

  await until(() => loop.acked.length + loop.failures.length >= 300, 15_000)
  await loop.stop()
  const w = loop.window(faultAt)
  t.comment(`promoted after ${promotedMs} ms; workers followed after ${followedMs} ms; API: ${w.failed} of 300 writes failed, back ${w.backAfterMs} ms after the failover (errors over ${w.errorSpanMs} ms, slowest write ${w.slowestMs} ms)`)
  // The 2 s target is a timing goal, measured by bench:failover on a quiet machine; here a CPU
  // shared with other test files makes single writes slow, so the test only bounds it loosely.
  t.ok(w.backAfterMs <= 15_000, `API writes back after the failover (${w.backAfterMs} ms; target 2 s in bench:failover)`)

  const all = [...ids, ...loop.acked]
  const counts = () => {
    const c = new Map<string, number>()
    for (const r of recs) for (const call of r.calls) c.set(call.id, (c.get(call.id) ?? 0) + 1)
    return c
  }
  t.ok(await until(() => all.every((id) => counts().has(id)), 30_000, 100), 'all handled')
  await sleep(1500)
  const c = counts()
  t.same(all.filter((id) => !c.has(id)), [], `none lost of ${all.length}`)
  t.same(all.filter((id) => (c.get(id) ?? 0) > 1), [], 'none handled twice')
})
