import { pino } from 'pino'
import t from 'tap'
import { subscribeClusterExpiredEvents } from '../src/expiry/cluster-subscriber.js'
import { createKeyspace, type Keyspace } from '../src/keys.js'
import { keySlot } from '../src/shard-tags.js'
import { createHold, getCheckout } from '../src/store/checkout-store.js'
import { createStoreContext } from '../src/store/context.js'
import { json, testConfig } from './helpers/app.js'
import { startCluster } from './helpers/cluster.js'
import { clusterStack } from './helpers/cluster-load.js'
import { clusterWorker, recorder, until } from './helpers/worker.js'

/**
 * The worker on a 3-master Redis Cluster with one replica each: expired
 * events are published only on the node where a key expires, so the worker
 * must listen on every master, and claims stay exactly-once across workers
 * and shards.
 */
const cluster = await startCluster()
t.teardown(cluster.stop)
const url = `redis://127.0.0.1:${cluster.nodes[0]!.port}/0`

/** An id of each shard, so a test can put a key on every slot the shards use. */
function idPerShard (keys: Keyspace, prefix: string): string[] {
  const ids: string[] = []
  for (let i = 0; ids.filter(Boolean).length < keys.shards; i++) {
    const id = `${prefix}-${i}`
    ids[keys.shardOf(id)] ??= id
  }
  return ids
}

/** Which master serves each shard now. */
async function mastersOfShards (keys: Keyspace): Promise<number[]> {
  return await Promise.all(Array.from({ length: keys.shards }, async (_v, s) => await cluster.masterOfSlot(keySlot(keys.base(s)))))
}

t.test('expired events arrive from every master, and notify-keyspace-events is set on every node', async (t) => {
  for (const n of cluster.nodes) await cluster.node(n.port).config('SET', 'notify-keyspace-events', '')
  const client = cluster.client()
  const keys = createKeyspace(testConfig(url).KEY_PREFIX, 16)
  const got = new Set<number>()
  const due = new Map<number, number>()
  let subscribed = 0
  const events = await subscribeClusterExpiredEvents({
    cluster: client,
    connectNode: (n) => cluster.connectNode(n),
    keys,
    log: pino({ level: 'silent' }),
    onExpired: (shard) => got.add(shard),
    onDue: (shard, at) => due.set(shard, at),
    onSubscribed: () => { subscribed++ },
    onNotConfigurable: (node, reason) => t.fail(`${node} refused CONFIG: ${reason}`)
  })
  t.teardown(() => events.close())
  t.equal(events.masters().length, 3, 'one subscription per master')
  t.ok(events.connected(), 'connected on every master')
  t.ok(subscribed >= 1, 'the worker is told to sweep after subscribing')
  // Replicas join the client's view of the cluster a little later; the next topology read configures them.
  const flags = async () => await Promise.all(cluster.nodes.map(async (n) =>
    (await cluster.node(n.port).config('GET', 'notify-keyspace-events') as unknown as string[])[1] ?? ''))
  t.ok(await until(async () => (await flags()).every((f) => f.includes('E') && f.includes('x')), 5000, 100),
    `every node publishes expired events (${(await flags()).join(', ')})`)

  const ids = idPerShard(keys, 'ev')
  await Promise.all(ids.map(async (id) => await client.set(keys.order(id).timer, '1', 'PX', 20)))
  await new Promise((resolve) => setTimeout(resolve, 60))
  // Touching a key past its TTL expires it (and publishes) at once, on the master that owns it.
  await Promise.all(ids.map(async (id) => await client.exists(keys.order(id).timer)))
  t.ok(await until(() => got.size === keys.shards, 3000), `events from all ${keys.shards} shards (got ${got.size})`)
  const masters = new Set(await mastersOfShards(keys))
  t.equal(masters.size, 3, 'and those shards live on all three masters')

  // A new hold that is its shard's earliest is published on <prefix>due, whichever master runs the script.
  const store = createStoreContext(client, keys, 60_000)
  const deadlines = new Map<number, number>()
  for (const id of idPerShard(keys, 'due')) {
    const view = await createHold(store, { id, ttlMs: 60_000 })
    deadlines.set(keys.shardOf(id), view.expiresAt)
  }
  t.ok(await until(() => due.size === keys.shards, 3000), `told of the new earliest deadline in all ${keys.shards} shards (got ${due.size})`)
  t.same([...due].filter(([shard, at]) => deadlines.get(shard) !== at), [], 'each with its deadline')
})

t.test('the API and two workers: 3,000 holds over every shard and master, each handled exactly once', async (t) => {
  const { app, recs: [first, second], workers } = await clusterStack(t, cluster, url)
  t.ok(workers.every((w) => w.readiness().ready), 'both workers ready (subscribed on every master)')

  const total = 3000
  const ids = Array.from({ length: total }, (_v, i) => `cl-${i}`)
  const refused: string[] = []
  for (let i = 0; i < total; i += 100) {
    await Promise.all(ids.slice(i, i + 100).map(async (id, j) => {
      const ttlMs = 1500 + Math.floor(((i + j) / total) * 4000)
      const res = await app.inject({ method: 'POST', url: '/checkout', ...json({ id, ttlMs }) })
      if (res.statusCode !== 201) refused.push(`${id}: ${res.statusCode}`)
    }))
  }
  t.same(refused, [], 'every hold accepted')
  const keys = app.store.keys
  t.equal(new Set(ids.map((id) => keys.shardOf(id))).size, 16, 'holds in every shard')
  t.equal(new Set(await mastersOfShards(keys)).size, 3, 'on every master')

  const counts = () => {
    const c = new Map<string, number>()
    for (const call of [...first.calls, ...second.calls]) c.set(call.id, (c.get(call.id) ?? 0) + 1)
    return c
  }
  t.ok(await until(() => counts().size === total, 30_000, 100), `all handled (${counts().size} of ${total})`)
  await new Promise((resolve) => setTimeout(resolve, 1500))
  const c = counts()
  t.same(ids.filter((id) => !c.has(id)), [], 'none lost')
  t.same(ids.filter((id) => (c.get(id) ?? 0) > 1), [], 'none handled twice')
  t.ok(first.calls.length > 0 && second.calls.length > 0, `both workers ran handlers (${first.calls.length} and ${second.calls.length})`)
  t.match(await getCheckout(app.store, ids[0]!), { status: 'expired', outcome: 'handled' })
})

t.test('key format 2 spreads the shards evenly over the masters, and a worker on it handles each hold once', async (t) => {
  const spread = async (shards: number, format: 1 | 2) => {
    const perMaster = new Map<number, number>()
    for (const port of await mastersOfShards(createKeyspace('spread:', shards, format))) perMaster.set(port, (perMaster.get(port) ?? 0) + 1)
    return [...perMaster.values()].sort((a, b) => a - b)
  }
  t.same(await spread(16, 1), [4, 6, 6], 'format 1: 16 shards fall 6/6/4')
  t.same(await spread(16, 2), [5, 5, 6], 'format 2: 16 shards fall 6/5/5')
  t.same(await spread(12, 2), [4, 4, 4], 'format 2: 12 shards fall 4/4/4')
  t.same(await spread(48, 2), [16, 16, 16], 'format 2: 48 shards fall 16/16/16')

  const config = testConfig(url, { KEY_SHARDS: '12' })
  const { calls, handler } = recorder()
  const worker = await clusterWorker(config, cluster, [handler], { keyFormat: 2 })
  t.teardown(() => worker.close())
  const client = cluster.client()
  t.match(JSON.parse(await client.get(`${config.KEY_PREFIX}layout`) ?? '{}'), { version: 2, shards: 12 }, 'format 2 recorded for the new prefix')
  const store = createStoreContext(client, createKeyspace(config.KEY_PREFIX, 12, 2), config.CHECKOUT_RESULT_RETENTION_MS)
  const ids = Array.from({ length: 300 }, (_v, i) => `f2-${i}`)
  await Promise.all(ids.map(async (id, i) => await createHold(store, { id, ttlMs: 1000 + (i % 10) * 100 })))
  t.ok(await until(() => new Set(calls.map((c) => c.id)).size === ids.length, 15_000), 'all handled')
  await new Promise((resolve) => setTimeout(resolve, 500))
  t.equal(calls.length, ids.length, 'each once')
})
