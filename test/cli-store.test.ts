import t, { type Test } from 'tap'
import { closeRedis } from '../src/redis/connection.js'
import { createHold } from '../src/store/checkout-store.js'
import type { StoreContext } from '../src/store/context.js'
import { failJob, releaseJobs } from '../src/store/expiry-jobs.js'
import { listPendingHolds } from '../src/store/listing.js'
import { readQueueStats, readStats, recordFound } from '../src/store/stats.js'
import { testConfig } from './helpers/app.js'
import { startRedis } from './helpers/redis.js'
import { testStore } from './helpers/worker.js'
import { claimAsOwner } from './helpers/own.js'
import { beatMembership } from '../src/store/membership.js'

/** The store functions checkoutctl reads with: pending holds a page at a time, and the stats. */
const redis = await startRedis()
t.teardown(redis.stop)

function store (t: Test, shards: number): StoreContext {
  const s = testStore(testConfig(redis.url, { KEY_SHARDS: String(shards) }))
  t.teardown(() => closeRedis(s.redis))
  return s
}

t.test('pending holds page through every shard, each hold once, earliest deadline first within a shard', async (t) => {
  const s = store(t, 4)
  const ids = Array.from({ length: 17 }, (_v, i) => `p-${i}`)
  await Promise.all(ids.map(async (id, i) => await createHold(s, { id, ttlMs: 60_000 + (i % 3) * 1000 })))
  for (const limit of [1, 2, 5, 100]) {
    const seen: Array<{ shard: number, id: string, expiresAt: number }> = []
    let cursor: string | undefined
    let pages = 0
    do {
      const page = await listPendingHolds(s, { limit, cursor })
      t.ok(page.items.length <= limit)
      seen.push(...page.items)
      cursor = page.next
      pages++
    } while (cursor !== undefined && pages < 100)
    t.same(seen.map((h) => h.id).sort(), [...ids].sort(), `limit ${limit}: every hold once (${pages} pages)`)
    const inOrder = seen.every((h, i) => i === 0 || seen[i - 1]!.shard < h.shard ||
      (seen[i - 1]!.shard === h.shard && seen[i - 1]!.expiresAt <= h.expiresAt))
    t.ok(inOrder, `limit ${limit}: by shard, then deadline`)
  }
  const [first] = (await listPendingHolds(s, { limit: 1 })).items
  t.ok(first!.remainingMs > 50_000 && first!.remainingMs <= 62_000, 'time left from the server clock')
})

t.test('queue stats count pending holds, due and running jobs and dead letters; found counts add up', async (t) => {
  const s = store(t, 1)
  for (const id of ['short-1', 'short-2', 'short-3']) await createHold(s, { id, ttlMs: 1000 })
  for (const id of ['long-1', 'long-2']) await createHold(s, { id, ttlMs: 60_000 })
  t.match(await readQueueStats(s), { pending: 5, deadLetters: 0, jobs: { total: 0, due: 0, running: 0 } })
  await new Promise((resolve) => setTimeout(resolve, 1050))
  const lease = { token: 'stats-worker', runningMs: 10_000, maxAttempts: 1 }
  // Jobs count as running while held by a live worker: a member of the workers.
  await beatMembership(s, lease.token)
  const { jobs } = await claimAsOwner(s, 0, 10, lease, 1)
  t.equal(jobs.length, 3, 'the three expired holds are handed out')
  t.same(await readQueueStats(s), { pending: 2, deadLetters: 0, jobs: { total: 3, due: 0, running: 3 } })
  t.equal(await releaseJobs(s, 0, lease.token, [{ job: jobs[2]!, how: 'unstarted' }]), 1, 'one given back: due again')
  t.same(await readQueueStats(s), { pending: 2, deadLetters: 0, jobs: { total: 3, due: 1, running: 2 } })
  t.equal(await failJob(s, jobs[0]!, lease.token, 'boom', 1, 0), 'dead')
  t.same(await readQueueStats(s), { pending: 2, deadLetters: 1, jobs: { total: 2, due: 1, running: 1 } })

  t.same(await readStats(s), { found: { event: 0, sweep: 0 } }, 'nothing recorded yet')
  await recordFound(s, { event: 0, sweep: 0 })
  t.equal(await s.redis.exists(`${s.keys.prefix}stats`), 0, 'nothing to add writes nothing')
  await recordFound(s, { event: 3, sweep: 1 })
  await recordFound(s, { event: 1, sweep: 0 })
  t.same(await readStats(s), { found: { event: 4, sweep: 1 } })
})
