import t, { type Test } from 'tap'
import { closeRedis } from '../src/redis/connection.js'
import { createHold } from '../src/store/checkout-store.js'
import type { StoreContext } from '../src/store/context.js'
import {
  countDeadLetters, findDeadLetters, listDeadLetters, purgeDeadLettersOlderThan, replayDeadLetter
} from '../src/store/dead-letters.js'
import { serverTime } from '../src/store/direct.js'
import { failJob, releaseJobs } from '../src/store/expiry-jobs.js'
import { InvalidCursorError, listDeadLetterPage } from '../src/store/listing.js'
import { testConfig } from './helpers/app.js'
import { startRedis } from './helpers/redis.js'
import { testStore } from './helpers/worker.js'
import { claimAsOwner } from './helpers/own.js'

/** The dead-letter store functions: paging across shards, finding an order's letters, retention. */
const redis = await startRedis()
t.teardown(redis.stop)

const sleep = async (ms: number) => await new Promise((resolve) => setTimeout(resolve, ms))
const lease = { token: 'dl-worker', runningMs: 10_000, maxAttempts: 1 }
let seq = 0

function store (t: Test, shards: number): StoreContext {
  const s = testStore(testConfig(redis.url, { KEY_SHARDS: String(shards) }))
  t.teardown(() => closeRedis(s.redis))
  return s
}

/** Holds that expire, are claimed and fail their only attempt: one dead letter each, all failing in one go. */
async function holdsToExpire (s: StoreContext, ids: string[]): Promise<void> {
  for (const id of ids) await createHold(s, { id, ttlMs: 1000, payload: { id } })
}
async function failAllDue (s: StoreContext, error = 'boom'): Promise<number> {
  let dead = 0
  for (let shard = 0; shard < s.keys.shards; shard++) {
    for (const job of (await claimAsOwner(s, shard, 1000, lease, ++seq)).jobs) {
      if (await failJob(s, job, lease.token, error, 1, 0) === 'dead') dead++
    }
  }
  return dead
}

t.test('pages of dead letters go through every shard, each letter exactly once, and the cursor ends', async (t) => {
  const s = store(t, 4)
  const ids = Array.from({ length: 13 }, (_v, i) => `page-${i}`)
  await holdsToExpire(s, ids)
  await sleep(1050)
  t.equal(await failAllDue(s), 13)
  t.ok(new Set(ids.map((id) => s.keys.shardOf(id))).size > 1, 'the letters are spread over several shards')

  const seen: string[] = []
  let cursor: string | undefined = '0'
  let pages = 0
  for (; cursor !== undefined && pages < 50; pages++) {
    const page = await listDeadLetterPage(s, { limit: 3, cursor })
    t.ok(page.items.length <= 3, 'a page holds at most the limit')
    seen.push(...page.items.map((d) => d.id))
    cursor = page.next
  }
  t.equal(cursor, undefined, 'the last page says there is no more')
  t.same([...seen].sort(), [...ids].sort(), 'every dead letter, none twice')
  t.ok(pages >= 5, `it took ${pages} pages of 3`)
  const first = await listDeadLetterPage(s, { limit: 100 })
  t.match(first.items[0], { id: String, generation: 1, attempts: 1, lastError: 'boom', payload: { id: String } })
  t.same(first.items.map((d) => d.shard), [...first.items.map((d) => d.shard)].sort((a, b) => a - b), 'shard by shard')
  await t.rejects(listDeadLetterPage(s, { limit: 3, cursor: '9' }), InvalidCursorError, 'a shard beyond KEY_SHARDS is refused')
  await t.rejects(listDeadLetterPage(s, { limit: 3, cursor: 'x:1' }), InvalidCursorError)
})

t.test('letters that died in the same millisecond are each listed once, with a limit smaller than the tie', async (t) => {
  const s = store(t, 1)
  const ids = Array.from({ length: 7 }, (_v, i) => `tie-${i}`)
  await holdsToExpire(s, ids)
  await sleep(1050)
  // One claim hands out all seven; their worker then "dies", and the next claim dead-letters all of them at once.
  const dying = { ...lease, token: 'dies', runningMs: 100 }
  t.equal((await claimAsOwner(s, 0, 100, dying, ++seq)).jobs.length, 7)
  await sleep(200)
  await claimAsOwner(s, 0, 100, { ...lease, token: 'reaper' }, ++seq)
  const scores = await s.redis.zrange(s.keys.shard(0).dead, '0', '-1', 'WITHSCORES')
  t.equal(new Set(scores.filter((_v, i) => i % 2 === 1)).size, 1, 'all seven share one score')

  const seen: string[] = []
  let cursor: string | undefined = '0'
  for (let pages = 0; cursor !== undefined && pages < 20; pages++) {
    const page = await listDeadLetterPage(s, { limit: 2, cursor })
    seen.push(...page.items.map((d) => d.id))
    cursor = page.next
  }
  t.same(seen.sort(), ids, 'seven letters, each once')
})

t.test('letters removed while paging do not make the listing skip the others', async (t) => {
  const s = store(t, 1)
  const ids = Array.from({ length: 6 }, (_v, i) => `moving-${i}`)
  await holdsToExpire(s, ids)
  await sleep(1050)
  for (const id of ids) {
    await failAllDueOne(s, id)
    await sleep(2) // distinct scores
  }
  const first = await listDeadLetterPage(s, { limit: 2 })
  for (const d of first.items) t.ok(await replayDeadLetter(s, d.shard, d.member), `${d.id} replayed between pages`)
  const rest: string[] = []
  let cursor = first.next
  for (let pages = 0; cursor !== undefined && pages < 10; pages++) {
    const page = await listDeadLetterPage(s, { limit: 2, cursor })
    rest.push(...page.items.map((d) => d.id))
    cursor = page.next
  }
  t.same([...first.items.map((d) => d.id), ...rest], ids, 'oldest first, and no letter skipped after the removal')
})

async function failAllDueOne (s: StoreContext, id: string): Promise<void> {
  const shard = s.keys.shardOf(id)
  const { jobs } = await claimAsOwner(s, shard, 1000, lease, ++seq)
  for (const job of jobs) {
    if (job.id === id) await failJob(s, job, lease.token, 'boom', 1, 0)
  }
  // The claim hands out every due job of the shard: the others go back, unstarted, for a later call.
  const others = jobs.filter((j) => j.id !== id)
  if (others.length > 0) await releaseJobs(s, shard, lease.token, others.map((job) => ({ job, how: 'unstarted' as const })))
}

t.test("an order's dead letters are found by id, every generation, and no other id's", async (t) => {
  const s = store(t, 1)
  await holdsToExpire(s, ['ord', 'x:ord', 'ord2'])
  await sleep(1050)
  t.equal(await failAllDue(s), 3)
  await holdsToExpire(s, ['ord'])
  await sleep(1050)
  t.equal(await failAllDue(s), 1, 'the second generation of ord dies too')
  const found = await findDeadLetters(s, 'ord')
  t.equal(found.shard, s.keys.shardOf('ord'))
  t.equal(found.members.length, 2, 'both generations')
  t.ok(found.members.every((m) => /^\d+:ord$/.test(m)), 'only ord itself, not x:ord or ord2')
  t.same(await findDeadLetters(s, 'never'), { shard: 0, members: [] })
})

t.test('purge older than a duration removes only the old letters, with their job hashes, in small batches', async (t) => {
  const s = store(t, 4)
  const old = Array.from({ length: 5 }, (_v, i) => `old-${i}`)
  const young = Array.from({ length: 3 }, (_v, i) => `young-${i}`)
  await holdsToExpire(s, [...old, ...young])
  await sleep(1050)
  for (const id of old) await failAllDueOne(s, id)
  // A wide gap, and ages computed from the Redis clock: a slow machine must not make a young letter old.
  await sleep(1500)
  for (const id of young) await failAllDueOne(s, id)
  t.equal(await countDeadLetters(s), 8)
  const members = new Map<string, { shard: number, member: string }>()
  for (const id of [...old, ...young]) {
    const { shard, members: [member] } = await findDeadLetters(s, id)
    members.set(id, { shard, member: member! })
  }

  const diedAt = async (id: string) => {
    const { shard, member } = members.get(id)!
    return Number(await s.redis.zscore(s.keys.shard(shard).dead, member))
  }
  const lastOld = Math.max(...await Promise.all(old.map(diedAt)))
  const firstYoung = Math.min(...await Promise.all(young.map(diedAt)))
  t.ok(firstYoung - lastOld > 1000, 'the young ones died well after the old ones')
  const result = await purgeDeadLettersOlderThan(s, await serverTime(s) - (lastOld + firstYoung) / 2, { batch: 2 })
  t.equal(result.purged, 5, 'the five old ones')
  t.equal(await countDeadLetters(s), 3)
  for (const id of old) {
    const { shard, member } = members.get(id)!
    t.equal(await s.redis.exists(s.keys.shard(shard).job(member)), 0, `${id}: its job hash is gone`)
  }
  for (const id of young) {
    const { shard, member } = members.get(id)!
    t.equal(await s.redis.exists(s.keys.shard(shard).job(member)), 1, `${id}: kept, with its job hash`)
  }
  t.same((await listDeadLetterPage(s, { limit: 10 })).items.map((d) => d.id).sort(), young)
  t.equal((await purgeDeadLettersOlderThan(s, await serverTime(s) - firstYoung + 10_000)).purged, 0, 'nothing more is that old')
  t.equal((await purgeDeadLettersOlderThan(s, 0, { batch: 1 })).purged, 3, 'older than 0 ms: every letter')
  t.same(await listDeadLetters(s, 0), [])
})
