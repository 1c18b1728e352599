import t from 'tap'
import { json } from './helpers/app.js'
import { startCluster } from './helpers/cluster.js'
import { clusterStack, startWriteLoop } from './helpers/cluster-load.js'
import { until } from './helpers/worker.js'

/**
 * A master SIGKILLed in the middle of the expiry window; its replica is
 * promoted by the cluster (cluster-node-timeout 1 s). The API writes again
 * within 5 s, both workers follow the new master, and every acknowledged
 * hold that reached the replica is handled exactly once. Holds the master
 * acknowledged but never replicated are lost with it (no WAIT here): the
 * test measures how many (docs/delivery.md).
 */
const cluster = await startCluster({ nodeTimeoutMs: 1000 })
t.teardown(cluster.stop)
const url = `redis://127.0.0.1:${cluster.nodes[0]!.port}/0`
const sleep = async (ms: number) => await new Promise((resolve) => setTimeout(resolve, ms))

t.test('a master SIGKILLed during the expiry window: every hold that reached the replica handled once, the API writes come back', async (t) => {
  const { app, recs, workers } = await clusterStack(t, cluster, url)

  const total = 1200
  const ids = Array.from({ length: total }, (_v, i) => `kill-${i}`)
  for (let i = 0; i < total; i += 100) {
    await Promise.all(ids.slice(i, i + 100).map(async (id, j) => {
      const res = await app.inject({ method: 'POST', url: '/checkout', ...json({ id, ttlMs: 2000 + Math.floor(((i + j) / total) * 6000) }) })
      if (res.statusCode !== 201) throw new Error(`${id}: ${res.statusCode}`)
    }))
  }
  const writes = 400
  const loop = startWriteLoop(app, { prefix: 'kill-live', everyMs: 20, ttlMs: () => 2000, max: writes })
  await sleep(2500)

  const [victim] = await cluster.masters()
  const replica = victim!.replicas[0]!
  const faultAt = Date.now()
  await cluster.kill(victim!.port)
  t.ok(await until(async () => String(await cluster.node(replica).info('replication')).includes('role:master'), 15_000, 50), 'the cluster promoted the replica')
  const promotedMs = Date.now() - faultAt
  const followed = await until(() => workers.every((w) => w.subscribedMasters().includes(`127.0.0.1:${replica}`) &&
    !w.subscribedMasters().includes(`127.0.0.1:${victim!.port}`) && w.readiness().ready), 5000, 50)
  const followedMs = Date.now() - faultAt
  t.ok(followed, `both workers subscribed on the promoted replica (${workers[0]?.subscribedMasters().join(', ')})`)

  await until(() => loop.acked.length + loop.failures.length >= writes, 20_000)
  await loop.stop()
  const w = loop.window(faultAt)
  // The 5 s target is a timing goal, measured by bench:failover on a quiet machine; here a CPU
  // shared with other test files makes single writes slow, so the test only bounds it loosely.
  t.ok(w.backAfterMs <= 15_000, `API writes back after the kill (${w.backAfterMs} ms; target 5 s in bench:failover)`)

  // What the replica never received is gone: an acknowledged hold that no longer exists.
  const acked = [...ids, ...loop.acked]
  const exists = async (id: string) => (await app.inject(`/checkout/${id}`)).statusCode === 200
  const present = new Set<string>()
  for (let i = 0; i < acked.length; i += 200) {
    const batch = acked.slice(i, i + 200)
    const found = await Promise.all(batch.map(exists))
    batch.forEach((id, j) => { if (found[j]) present.add(id) })
  }
  const lost = acked.filter((id) => !present.has(id))
  t.comment(`promoted ${promotedMs} ms after the kill; workers followed after ${followedMs} ms; API: ${w.failed} of ${writes} writes failed, ` +
    `back ${w.backAfterMs} ms after the kill (errors over ${w.errorSpanMs} ms, slowest write ${w.slowestMs} ms); acknowledged holds lost with the master: ${lost.length} of ${acked.length}`)

  const counts = () => {
    const c = new Map<string, number>()
    for (const r of recs) for (const call of r.calls) c.set(call.id, (c.get(call.id) ?? 0) + 1)
    return c
  }
  const expected = acked.filter((id) => present.has(id))
  t.ok(await until(() => expected.every((id) => counts().has(id)), 30_000, 100), 'all handled')
  await sleep(1500)
  const c = counts()
  t.same(expected.filter((id) => !c.has(id)), [], `none lost of the ${expected.length} that reached the replica`)
  // An acknowledgement the dead master had not yet replicated is lost with it: the promoted replica
  // hands that job out again (docs/delivery.md, "Replication failover"). Such a second run carries the
  // same idempotencyKey, and there can only be as many as acknowledgements in the replication lag.
  const twice = expected.filter((id) => (c.get(id) ?? 0) > 1)
  const keys = (id: string) => new Set(recs.flatMap((r) => r.calls.filter((call) => call.id === id).map((call) => call.idempotencyKey)))
  t.same(twice.filter((id) => keys(id).size !== 1), [], 'a second run, if any, has the same idempotency key')
  t.ok(twice.length <= expected.length / 100, `second runs stay within the replication lag (${twice.length})`)
  t.same(lost.filter((id) => c.has(id)), [], 'nothing ran for a hold the cluster lost')
  t.ok(lost.length <= acked.length / 100, `losses stay within the replication lag (${lost.length})`)
})
