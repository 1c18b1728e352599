import t from 'tap'
import { closeRedis } from '../src/redis/connection.js'
import { createHold, endHold, extendHold } from '../src/store/checkout-store.js'
import { countDeadLetters, listDeadLetters, purgeDeadLetter } from '../src/store/dead-letters.js'
import { RUNS_MAXLEN } from '../src/store/activity.js'
import { testConfig } from './helpers/app.js'
import { startRedis } from './helpers/redis.js'
import { testStore, testWorker, until } from './helpers/worker.js'

/**
 * Nothing grows without bound: 20,000 holds go through every outcome
 * (handled, dead-lettered, completed, cancelled, extended) with a 1 s
 * retention. Afterwards no key of an order, its job, its claims or a worker
 * remains; only the layout record and one hold counter per shard do, plus
 * the dead letters until they are purged (docs/keys.md).
 */
const HOLDS = 20_000
const redis = await startRedis()
t.teardown(redis.stop)
const config = testConfig(redis.url, {
  CHECKOUT_RESULT_RETENTION_MS: '1000',
  EXPIRY_MAX_ATTEMPTS: '2',
  EXPIRY_BACKOFF_MS: '10',
  EXPIRY_CONCURRENCY: '1000'
})
const store = testStore(config)
t.teardown(() => closeRedis(store.redis))

async function keysUnderPrefix (): Promise<string[]> {
  const found: string[] = []
  let cursor = '0'
  do {
    const [next, batch] = await store.redis.scan(cursor, 'MATCH', `${config.KEY_PREFIX}*`, 'COUNT', 1000)
    found.push(...batch)
    cursor = next
  } while (cursor !== '0')
  return found
}

const outcomeOf = (i: number) => (['handled', 'handled', 'handled', 'handled', 'dead', 'completed', 'completed', 'cancelled', 'extended', 'handled'] as const)[i % 10]!

t.test(`${HOLDS.toLocaleString('en')} holds through every outcome leave only the layout, the counters and the dead letters`, async (t) => {
  const worker = await testWorker(config, [{
    name: 'fails-for-dead',
    handle: (event) => { if (event.id.startsWith('dead-')) throw new Error('always fails') }
  }])
  let workerClosed = false
  t.teardown(async () => { if (!workerClosed) await worker.close() })

  const ids = Array.from({ length: HOLDS }, (_v, i) => `${outcomeOf(i)}-${i}`)
  for (let i = 0; i < ids.length; i += 200) {
    await Promise.all(ids.slice(i, i + 200).map(async (id, j) => {
      const n = i + j
      const kind = outcomeOf(n)
      const ending = kind === 'completed' || kind === 'cancelled'
      // An extended hold is created long and extended to 1.5 s: on a busy machine a short one could lapse before its extend.
      await createHold(store, { id, ttlMs: ending || kind === 'extended' ? 60_000 : 1000 + (n % 2000), payload: { n } })
      if (ending) await endHold(store, id, kind)
      if (kind === 'extended') await extendHold(store, id, 1500)
    }))
  }

  const shards = Array.from({ length: store.keys.shards }, (_v, s) => store.keys.shard(s))
  const pending = async () => {
    const sizes = await Promise.all(shards.flatMap((k) => [
      store.keys.format === 3 ? store.redis.hget(k.table, 'n').then(Number) : store.redis.zcard(k.deadlines),
      store.redis.zcard(k.jobs)
    ]))
    return sizes.reduce((a, b) => a + b, 0)
  }
  t.ok(await until(async () => await pending() === 0, 90_000, 250), 'every expiry handled or dead-lettered')
  await worker.close()
  workerClosed = true
  t.equal(await countDeadLetters(store), HOLDS / 10, 'the dead letters are counted')
  t.match(worker.runner.stats, { handled: HOLDS * 6 / 10, retried: HOLDS / 10, dead: HOLDS / 10, abandoned: 0, claimLost: 0 },
    'every run reported its outcome: none dead-lettered for never reporting back')

  // Past the retention, every ended order's hash has expired.
  await new Promise((resolve) => setTimeout(resolve, 1500))
  // Format 3 keeps each shard's bucket table too (docs/keys.md).
  // Each shard's owner record stays (its epoch must only grow), and the membership with the workers gone lately.
  const base = new Set([`${config.KEY_PREFIX}layout`, `${config.KEY_PREFIX}stats`, store.keys.members, ...shards.map((k) => k.holds), ...shards.map((k) => k.owner),
    ...store.keys.format === 3 ? shards.map((k) => k.table) : []])
  const deadKeys = new Set(shards.map((k) => k.dead))
  // What the workers record for the dashboard is bounded on its own (docs/keys.md): per-minute hashes
  // with a TTL and one trimmed stream of runs; a stopped worker's state entry is gone.
  const activityPrefix = `${config.KEY_PREFIX}activity:`
  const activity = (await keysUnderPrefix()).filter((key) => key.startsWith(activityPrefix))
  for (const key of activity) {
    if (key === `${activityPrefix}runs`) t.ok(await store.redis.xlen(key) <= RUNS_MAXLEN * 1.1, 'the runs stream is trimmed')
    else t.ok(key.startsWith(`${activityPrefix}m:`) && await store.redis.pttl(key) > 0, `${key} expires`)
  }
  const left = (await keysUnderPrefix()).filter((key) => !key.startsWith(activityPrefix))
  const unexpected = left.filter((key) => !base.has(key) && !deadKeys.has(key) && !/:job:\d+:dead-\d+$/.test(key))
  t.same(unexpected.slice(0, 10), [], 'nothing of handled, completed, cancelled or extended orders, jobs, claims or workers')
  t.equal(left.filter((key) => key.includes(':job:')).length, HOLDS / 10, 'one job hash per dead letter')

  for (const [shard] of shards.entries()) {
    for (let batch = await listDeadLetters(store, shard, 1000); batch.length > 0; batch = await listDeadLetters(store, shard, 1000)) {
      await Promise.all(batch.map(async (d) => await purgeDeadLetter(store, shard, d.member)))
    }
  }
  t.same((await keysUnderPrefix()).filter((key) => !key.startsWith(activityPrefix)).sort(), [...base].sort(), 'after the purge: the layout, the membership and one counter and owner record per shard, as before the next hold')
})
