import t from 'tap'
import { buildApp } from '../src/app.js'
import { ConfigError } from '../src/config.js'
import { closeRedis } from '../src/redis/connection.js'
import { pageHoldsByDeadline } from '../src/store/admin-queries.js'
import { createHold, endHold } from '../src/store/checkout-store.js'
import type { StoreContext } from '../src/store/context.js'
import { purgeDeadLetter } from '../src/store/dead-letters.js'
import { failJob } from '../src/store/expiry-jobs.js'
import { json, testConfig } from './helpers/app.js'
import { startRedis } from './helpers/redis.js'
import { testStore } from './helpers/worker.js'
import { claimAsOwner } from './helpers/own.js'

/** The /admin API: who may call it, dry runs that match their runs, holds paged by deadline while they change. */
const redis = await startRedis()
t.teardown(redis.stop)

const API = 'api-token-1'
const ADMIN = 'admin-token-1'
const BOTH = 'shared-token-1'
// Key format 1 here; the last test runs the API on format 3, and test/admin-queries-formats.test.ts
// checks every index query on both formats against the holds as created.
const config = testConfig(redis.url, {
  DASHBOARD: 'true', API_TOKENS: `${API},${BOTH}`, ADMIN_TOKENS: `${ADMIN},${BOTH}`, KEY_SHARDS: '4', KEY_FORMAT: '1'
})
const app = await buildApp({ config })
await app.ready()
t.teardown(() => app.close())
const store: StoreContext = testStore(config)
t.teardown(() => closeRedis(store.redis))
const as = (token: string) => ({ authorization: `Bearer ${token}` })
const sleep = async (ms: number) => await new Promise((resolve) => setTimeout(resolve, ms))

t.test('only admin tokens open /admin; an admin token opens /checkout only when it is an API token too', async (t) => {
  t.equal((await app.inject({ url: '/admin/summary' })).statusCode, 401, 'no token')
  t.equal((await app.inject({ url: '/admin/summary', headers: as(API) })).statusCode, 401, "a checkout client's token")
  t.equal((await app.inject({ url: '/admin/summary', headers: as(ADMIN) })).statusCode, 200, 'an admin token')
  t.equal((await app.inject({ url: '/admin/summary', headers: as(BOTH) })).statusCode, 200, 'a token in both lists')
  const replay = await app.inject({ method: 'POST', url: '/admin/dead-letters/replay', ...json({ all: true, dryRun: true }), headers: { ...json({}).headers, ...as(API) } })
  t.equal(replay.statusCode, 401, 'a checkout token cannot replay dead letters')
  t.equal((await app.inject({ url: '/checkout/x1', headers: as(ADMIN) })).statusCode, 401, 'an admin token on /checkout')
  t.equal((await app.inject({ url: '/checkout/x1', headers: as(BOTH) })).statusCode, 404, 'a token in both lists on /checkout')
  const page = await app.inject({ url: '/dashboard' })
  t.equal(page.statusCode, 200, 'the page itself needs no token: it holds no data')
  t.match(page.headers['content-security-policy'], /default-src 'none'/)
  const docText = (await app.inject({ url: '/docs/json' })).body
  const doc = JSON.parse(docText) as { paths: Record<string, { get?: { security?: unknown } }> }
  t.same(doc.paths['/admin/summary']?.get?.security, [{ adminAuth: [] }], 'the API document lists the admin routes with their own scheme')
  t.notOk(doc.paths['/dashboard'], 'the page is not in the API document')
  const { Validator } = await import('@seriousme/openapi-schema-validator')
  const result = await new Validator().validate(JSON.parse(docText) as Parameters<InstanceType<typeof Validator>["validate"]>[0])
  t.same(result.errors, undefined, 'the document with the admin routes is valid OpenAPI 3')
})

t.test('the admin API is off without DASHBOARD=true, and DASHBOARD=true needs ADMIN_TOKENS', async (t) => {
  const off = await buildApp({ config: testConfig(redis.url, { ADMIN_TOKENS: ADMIN }) })
  t.teardown(() => off.close())
  t.equal((await off.inject({ url: '/admin/summary', headers: as(ADMIN) })).statusCode, 404)
  t.equal((await off.inject({ url: '/dashboard' })).statusCode, 404)
  t.throws(() => testConfig(redis.url, { DASHBOARD: 'true' }), ConfigError)
  // Without API_TOKENS /checkout is open, /admin still is not.
  const open = await buildApp({ config: testConfig(redis.url, { DASHBOARD: 'true', ADMIN_TOKENS: ADMIN }) })
  t.teardown(() => open.close())
  t.equal((await open.inject({ url: '/checkout/x1' })).statusCode, 404)
  t.equal((await open.inject({ url: '/admin/health' })).statusCode, 401)
  t.equal((await open.inject({ url: '/admin/health', headers: as(ADMIN) })).statusCode, 200)
})

const lease = { token: 'admin-test-worker', runningMs: 10_000, maxAttempts: 1 }
let seq = 0
/** Claims every due job and fails its only attempt: one dead letter each. */
async function failAllDue (): Promise<number> {
  let dead = 0
  for (let shard = 0; shard < store.keys.shards; shard++) {
    for (const job of (await claimAsOwner(store, shard, 1000, lease, ++seq)).jobs) {
      if (await failJob(store, job, lease.token, 'planned failure', 1, 0) === 'dead') dead++
    }
  }
  return dead
}

t.test('every bulk action answers a dry run whose count the run then takes, and audits the run', async (t) => {
  const bulk = async (action: string, body: Record<string, unknown>) =>
    await app.inject({ method: 'POST', url: `/admin/dead-letters/${action}`, ...json(body), headers: { ...json(body).headers, ...as(ADMIN) } })
  const ids = Array.from({ length: 9 }, (_v, i) => `dead-${i}`)
  for (const id of ids) await createHold(store, { id, ttlMs: 1000 })
  await sleep(1050)
  t.equal(await failAllDue(), 9)

  const dry = (await bulk('replay', { all: true, dryRun: true })).json()
  t.equal(dry.count, 9, 'the dry run counts every dead letter')
  t.equal(dry.sample.length, 9)
  t.equal((await bulk('replay', { all: true, dryRun: false, upTo: dry.upTo })).json().code, 'CONFIRMATION_REQUIRED', 'no run without the confirmed count')
  const run = (await bulk('replay', { all: true, dryRun: false, confirmCount: dry.count, upTo: dry.upTo })).json()
  t.equal(run.count, dry.count, 'the run replays as many as the dry run said')
  t.equal((await bulk('replay', { all: true, dryRun: true })).json().count, 0, 'none is left')

  // They die again (the handler still fails): a selection of three, then a count that changed.
  t.equal(await failAllDue(), 9)
  const letters = ((await app.inject({ url: '/admin/dead-letters?limit=3', headers: as(ADMIN) })).json().items as Array<{ shard: number, member: string }>)
    .map(({ shard, member }) => ({ shard, member }))
  const dryPick = (await bulk('purge', { letters, dryRun: true })).json()
  t.equal(dryPick.count, 3)
  t.equal((await bulk('purge', { letters, dryRun: false, confirmCount: dryPick.count })).json().count, 3, 'the selection is purged')

  const dryAll = (await bulk('purge', { all: true, dryRun: true })).json()
  t.equal(dryAll.count, 6)
  const [first] = dryAll.sample as Array<{ shard: number, member: string }>
  if (first) await purgeDeadLetter(store, first.shard, first.member)
  const changed = await bulk('purge', { all: true, dryRun: false, confirmCount: dryAll.count, upTo: dryAll.upTo })
  t.equal(changed.statusCode, 409, 'a selection that changed since its dry run is refused')
  t.equal(changed.json().code, 'COUNT_CHANGED')
  const dryAgain = (await bulk('purge', { all: true, dryRun: true })).json()
  const purged = (await bulk('purge', { all: true, dryRun: false, confirmCount: dryAgain.count, upTo: dryAgain.upTo })).json()
  t.equal(purged.count, dryAgain.count)
  t.equal(purged.count, 5)

  const audit = (await app.inject({ url: '/admin/audit', headers: as(ADMIN) })).json().items as Array<{ action: string, count: number, who: string }>
  t.same(audit.map((a) => [a.action, a.count]), [['dead-letters.purge', 5], ['dead-letters.purge', 3], ['dead-letters.replay', 9]],
    'every run, and no dry run, is in the audit stream, newest first')
  t.notMatch(JSON.stringify(audit), ADMIN, 'the audit names a hash of the token, never the token')
  t.match(audit[0]?.who, /^token:[0-9a-f]{8}@/)
})

t.test('holds paged by deadline: each one that stays is listed once, in order, while others come and go', async (t) => {
  const ids = Array.from({ length: 40 }, (_v, i) => `page-${String(i).padStart(2, '0')}`)
  // Two holds share each deadline, so pages also end between ties.
  for (const [i, id] of ids.entries()) await createHold(store, { id, ttlMs: 600_000 + Math.floor(i / 2) * 1000 })
  const removed = new Set<string>()
  const seen: string[] = []
  let cursor: string | undefined
  let last = { at: -1, id: '' }
  for (let page = 0; page < 40; page++) {
    const res = await app.inject({ url: `/admin/holds?limit=7${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`, headers: as(ADMIN) })
    t.equal(res.statusCode, 200)
    const body = res.json() as { items: Array<{ id: string, expiresAt: number }>, next: string | null }
    for (const h of body.items) {
      t.ok(h.expiresAt > last.at || (h.expiresAt === last.at && h.id > last.id), `${h.id} comes after ${last.id}`)
      last = { at: h.expiresAt, id: h.id }
      seen.push(h.id)
    }
    // Between pages: one hold not listed yet is cancelled, one listed already too, and a new one joins ahead.
    const ahead = ids.find((id) => !seen.includes(id) && !removed.has(id))
    const behind = seen.find((id) => !removed.has(id))
    for (const id of [ahead, behind]) {
      if (id === undefined) continue
      await endHold(store, id, 'cancelled')
      removed.add(id)
    }
    await createHold(store, { id: `late-${page}`, ttlMs: 900_000 })
    if (body.next === null) break
    cursor = body.next
  }
  t.equal(new Set(seen).size, seen.length, 'no hold is listed twice')
  const stayed = ids.filter((id) => !removed.has(id))
  t.same(stayed.filter((id) => !seen.includes(id)), [], 'every hold present throughout is listed')
  t.equal((await app.inject({ url: '/admin/holds?cursor=nonsense', headers: as(ADMIN) })).json().code, 'INVALID_CURSOR')
})

t.test('a prefix search looks at a bounded number of entries per call and resumes from its cursor', async (t) => {
  for (let i = 0; i < 30; i++) await createHold(store, { id: `pfx-${i % 3 === 0 ? 'hit' : 'miss'}-${i}`, ttlMs: 700_000 + i * 10 })
  const hits: string[] = []
  let cursor: string | undefined
  let calls = 0
  for (; calls < 100; calls++) {
    const page = await pageHoldsByDeadline(store, { prefix: 'pfx-hit', limit: 50, scanLimit: 60, cursor })
    t.ok(page.scanned <= 60, 'no call looks at more entries than its bound')
    hits.push(...page.items.map((h) => h.id))
    if (page.next === undefined) break
    cursor = page.next
  }
  t.ok(calls > 0, 'the search took more than one bounded call')
  t.same(hits.sort(), Array.from({ length: 10 }, (_v, i) => `pfx-hit-${i * 3}`).sort(), 'and found every match exactly once')
})

t.test('summary, deadline histogram and timeline read what is stored', async (t) => {
  const before = (await app.inject({ url: '/admin/summary', headers: as(ADMIN) })).json()
  await createHold(store, { id: 'soon-1', ttlMs: 30_000 })
  const after = (await app.inject({ url: '/admin/summary', headers: as(ADMIN) })).json()
  t.equal(after.pending, before.pending + 1)
  t.equal(after.expiring.next1m, before.expiring.next1m + 1, 'a hold due in 30 s counts in the next minute')
  t.equal(after.minutes.length, 60)
  const hist = (await app.inject({ url: '/admin/deadlines?bucketMs=60000&buckets=20', headers: as(ADMIN) })).json()
  t.equal(hist.counts.length, 20)
  t.equal(hist.counts.reduce((a: number, b: number) => a + b, 0), after.pending, 'every pending hold is in one bucket of the next 20 min')
  const timeline = (await app.inject({ url: '/admin/holds/soon-1/timeline', headers: as(ADMIN) })).json()
  t.equal(timeline.hold.status, 'pending')
  t.equal(timeline.job, null)
  const health = (await app.inject({ url: '/admin/health', headers: as(ADMIN) })).json()
  t.equal(health.alerts.find((a: { name: string }) => a.name === 'CheckoutExpiryNoWorkerReady')?.state, 'pending', 'no worker runs in this test: pending for its 1 min')
  t.equal(health.alerts.find((a: { name: string }) => a.name === 'CheckoutExpiryDeadLetters')?.firing, false)
})

t.test('a worker records its runs, lateness and liveness for the summary, the timeline and the health panel', async (t) => {
  const { testWorker } = await import('./helpers/worker.js')
  const worker = await testWorker(config, [{ name: 'ok', handle: () => {} }])
  let stopped = false
  t.teardown(async () => { if (!stopped) await worker.close(2000) })
  const before = (await app.inject({ url: '/admin/summary', headers: as(ADMIN) })).json()
  for (let i = 0; i < 3; i++) await createHold(store, { id: `rec-${i}`, ttlMs: 1000 })
  const deadline = Date.now() + 10_000
  let summary = before
  while (Date.now() < deadline && summary.lastHour.handled < before.lastHour.handled + 3) {
    await sleep(200)
    summary = (await app.inject({ url: '/admin/summary', headers: as(ADMIN) })).json()
  }
  t.equal(summary.lastHour.handled, before.lastHour.handled + 3, 'the handled runs reach the minute buckets')
  const firstRuns = (s: { minutes: Array<{ sweep: number, event: number }> }) => s.minutes.reduce((a, m) => a + m.sweep + m.event, 0)
  t.equal(firstRuns(summary), firstRuns(before) + 3, 'counted by trigger')
  t.not(summary.lastHour.latenessP99Ms, null, 'with their lateness')
  const timeline = (await app.inject({ url: '/admin/holds/rec-0/timeline', headers: as(ADMIN) })).json()
  t.match(timeline.entries.map((e: { kind: string, detail: string }) => `${e.kind} ${e.detail}`).join('\n'),
    new RegExp(`run attempt 1 by worker ${worker.token.slice(0, 8)} .*handled`), 'the timeline has the run')
  const health = (await app.inject({ url: '/admin/health', headers: as(ADMIN) })).json()
  const mine = health.workers.find((w: { token: string }) => w.token === worker.token.slice(0, 8))
  t.ok(mine?.alive && mine.ready && mine.subscriber, 'the health panel sees the worker alive, ready and subscribed')
  const { host, port } = store.redis.options as { host?: string, port?: number }
  const master = `${host ?? '127.0.0.1'}:${port ?? 6379}`
  t.same(mine.masters, [master], 'the worker reports the master its subscription is up on')
  t.same(health.masters, [{ master, workers: 1, subscribed: true }], 'the one master has a subscribed live worker')
  t.equal(health.alerts.find((a: { name: string }) => a.name === 'CheckoutExpiryNoWorkerReady')?.firing, false)
  stopped = true
  await worker.close(2000)
  const after = (await app.inject({ url: '/admin/health', headers: as(ADMIN) })).json()
  t.notOk(after.workers.some((w: { token: string }) => w.token === worker.token.slice(0, 8)), 'a worker that stops removes its entry')
  t.same(after.masters, [{ master, workers: 0, subscribed: false }], 'with no live worker no one hears the master')
})

t.test('alert states follow the rules of docs/operations.md', async (t) => {
  const { alertConditions } = await import('../src/admin/alerts.js')
  const { LATENESS_BOUNDS_MS } = await import('../src/store/activity.js')
  const minute = (late: number, event: number, sweep: number) => {
    const lateness = Array.from({ length: LATENESS_BOUNDS_MS.length + 1 }, () => 0)
    lateness[LATENESS_BOUNDS_MS.findIndex((b) => late <= b)] = 100
    return { at: 0, runs: { event, sweep, retry: 0 }, outcomes: { handled: 0, retried: 0, dead: 0, abandoned: 0, claim_lost: 0 }, lateness }
  }
  const worker = { token: 'w', pid: 1, host: 'h', at: 0, startedAt: 0, ready: true, subscriber: true, running: 0, concurrency: 1, ageMs: 0, alive: true }
  const firing = (input: Parameters<typeof alertConditions>[0]) => alertConditions(input).filter((a) => a.holds).map((a) => a.name)
  t.same(firing({ deadLetters: 0, minutes: [minute(5, 0, 100)], workers: [worker], keyspaceEvents: true }), [], 'a healthy system fires none')
  t.same(firing({ deadLetters: 2, minutes: Array.from({ length: 15 }, () => minute(2000, 200, 100)), workers: [{ ...worker, alive: false }], keyspaceEvents: false }), [
    'CheckoutExpiryDeadLetters', 'CheckoutExpiryLate', 'CheckoutExpirySweeperBehind', 'CheckoutExpiryWorkerNotReady', 'CheckoutExpiryNoWorkerReady', 'KeyspaceEventsOff'
  ])
  t.same(firing({ deadLetters: 0, minutes: [minute(5, 0, 1)], workers: [{ ...worker, subscriber: false }], keyspaceEvents: true }), ['CheckoutExpirySubscriberDisconnected'])
})

t.test('on a cluster each master counts the live workers subscribed there', async (t) => {
  const { masterHealth } = await import('../src/admin/alerts.js')
  const w = { token: 'w', pid: 1, host: 'h', at: 0, startedAt: 0, ready: true, subscriber: false, running: 0, concurrency: 1, ageMs: 0, alive: true }
  const workers = [
    { ...w, masters: ['10.0.0.1:7000', '10.0.0.2:7000'] },
    { ...w, masters: ['10.0.0.1:7000', '10.0.0.3:7000'], alive: false }
  ]
  t.same(masterHealth(['10.0.0.1:7000', '10.0.0.2:7000', '10.0.0.3:7000'], workers, false), [
    { master: '10.0.0.1:7000', workers: 1, subscribed: true },
    { master: '10.0.0.2:7000', workers: 1, subscribed: true },
    { master: '10.0.0.3:7000', workers: 0, subscribed: false }
  ], 'a lapsed worker does not count; a master no live worker hears is not subscribed')
})

t.test("an alert fires once its condition has held for its rule's for: delay, tracked in Redis", async (t) => {
  const { withForDelays, ALERT_FOR_MS } = await import('../src/admin/alerts.js')
  const { ALERT_GAP_MS, trackAlertConditions } = await import('../src/store/activity.js')
  t.teardown(async () => { await store.redis.del(`${store.keys.prefix}activity:alerts`) })
  const name = 'CheckoutExpiryDeadLetters'
  const forMs = ALERT_FOR_MS[name] as number
  t.equal(forMs, 60_000, 'the for: of docs/operations.md')
  const t0 = Date.now()
  const at = async (now: number, holds: boolean) => {
    const since = await trackAlertConditions(store, now, new Map([[name, holds]]))
    return withForDelays([{ name, holds, summary: '' }], since, now)[0]
  }
  t.match(await at(t0, true), { state: 'pending', firing: false, since: t0, forMs })
  t.match(await at(t0 + 20_000, true), { state: 'pending', since: t0 }, 'held 20 s of 60')
  t.match(await at(t0 + 40_000, true), { state: 'pending', since: t0 })
  t.match(await at(t0 + forMs, true), { state: 'firing', firing: true, since: t0 }, 'held 60 s: firing')
  t.match(await at(t0 + forMs + 1000, false), { state: 'inactive', firing: false, since: null }, 'a condition that stops holding clears at once')
  t.match(await at(t0 + forMs + 2000, true), { state: 'pending', since: t0 + forMs + 2000 }, 'and its delay starts again')
  const late = t0 + forMs + 3000 + ALERT_GAP_MS
  t.match(await at(late, true), { state: 'pending', since: late }, 'unseen for longer than the gap: not taken to have held meanwhile')
})

t.test('key format 3: the admin API lists, counts and places pending holds', async (t) => {
  const config3 = testConfig(redis.url, { DASHBOARD: 'true', ADMIN_TOKENS: ADMIN, KEY_SHARDS: '4', KEY_FORMAT: '3' })
  const app3 = await buildApp({ config: config3 })
  t.teardown(() => app3.close())
  await app3.ready()
  t.equal(app3.store.keys.format, 3)
  await createHold(app3.store, { id: 'f3-soon', ttlMs: 30_000 })
  const summary = (await app3.inject({ url: '/admin/summary', headers: as(ADMIN) })).json()
  t.equal(summary.pending, 1, 'counted as pending')
  t.equal(summary.expiring.next1m, 1, 'due in the next minute')
  const holds = (await app3.inject({ url: '/admin/holds', headers: as(ADMIN) })).json() as { items: Array<{ id: string }> }
  t.same(holds.items.map((h) => h.id), ['f3-soon'], 'listed')
})
