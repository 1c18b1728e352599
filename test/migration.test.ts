import type { Redis } from 'ioredis'
import t, { type Test } from 'tap'
import { main } from '../src/cli/args.js'
import type { Config } from '../src/config.js'
import type { ExpiryEvent } from '../src/expiry/handlers.js'
import { createKeyspace, type KeyFormat } from '../src/keys.js'
import { closeRedis, createRedis } from '../src/redis/connection.js'
import { json, testConfig } from './helpers/app.js'
import { startRedis } from './helpers/redis.js'
import { testWorker, until } from './helpers/worker.js'
import { buildApp } from '../src/app.js'

/**
 * Online migration to key format 3 (docs/keys.md "Migrating to format 3"):
 * holds of every state made under format 1 or 2, then `checkoutctl migrate
 * start` while an API and a worker run, then everything is still found,
 * changed and expired exactly once, and `migrate finish` waits for the old
 * layout to empty.
 */
const redis = await startRedis()
t.teardown(redis.stop)

async function ctl (config: Config, ...argv: string[]): Promise<{ code: number, out: string, err: string }> {
  let out = ''
  let err = ''
  const env = { REDIS_URL: config.REDIS_URL, KEY_PREFIX: config.KEY_PREFIX, KEY_SHARDS: String(config.KEY_SHARDS), LOG_LEVEL: 'silent' }
  const code = await main(argv, env, { out: (s) => { out += s }, err: (s) => { err += s } })
  return { code, out, err }
}

interface Left { pending: number, jobs: { total: number }, deadLetters: number, endedHolds: number, idempotencyRecords: number }
const status = async (config: Config) => JSON.parse((await ctl(config, 'migrate', '--status', '--json')).out) as
  { phase: string, left: Left, finishable: boolean }

async function migrate (t: Test, from: KeyFormat): Promise<void> {
  const config = testConfig(redis.url, {
    KEY_FORMAT: String(from),
    KEY_SHARDS: '4',
    EXPIRY_MAX_ATTEMPTS: '2',
    EXPIRY_BACKOFF_MS: '1500',
    EXPIRY_POLL_MS: '500',
    CHECKOUT_RESULT_RETENTION_MS: '60000'
  })
  const runs: Array<{ id: string, ok: boolean, key: string }> = []
  let deadHeals = false
  const handler = {
    name: 'recorder',
    handle: async (e: ExpiryEvent) => {
      const fails = (e.id === 'dead' && !deadHeals) || (e.id === 'retry' && !runs.some((r) => r.id === 'retry'))
      runs.push({ id: e.id, ok: !fails, key: e.idempotencyKey })
      if (fails) throw new Error('handler failed on purpose')
    }
  }
  const worker = await testWorker(config, [handler])
  t.teardown(() => worker.close(2000))
  const app = await buildApp({ config })
  await app.ready()
  t.teardown(() => app.close())
  const post = async (body: Record<string, unknown>, headers: Record<string, string> = {}) =>
    await app.inject({ method: 'POST', url: '/checkout', ...json(body), headers: { ...json(body).headers, ...headers } })
  const get = async (id: string) => (await app.inject(`/checkout/${id}`)).json<Record<string, unknown>>()
  const successes = (id: string) => runs.filter((r) => r.id === id && r.ok).length

  // Every state, under the old format.
  for (const id of ['p-long', 'done', 'cxl']) t.equal((await post({ id, ttlMs: 60_000 })).statusCode, 201)
  t.equal((await post({ id: 'p-pay', ttlMs: 60_000, payload: { cart: [1, 2] } })).statusCode, 201)
  t.equal((await post({ id: 'idem', ttlMs: 60_000 }, { 'idempotency-key': 'k-idem' })).statusCode, 201)
  t.equal((await app.inject({ method: 'POST', url: '/checkout/done/complete' })).statusCode, 200)
  t.equal((await app.inject({ method: 'DELETE', url: '/checkout/cxl' })).statusCode, 200)
  const soon = Array.from({ length: 5 }, (_v, i) => `soon-${i}`)
  for (const id of [...soon]) t.equal((await post({ id, ttlMs: 13_000 })).statusCode, 201)
  for (const id of ['handled', 'dead']) t.equal((await post({ id, ttlMs: 1000 })).statusCode, 201)
  t.ok(await until(async () => (await get('handled')).outcome === 'handled' && (await get('dead')).outcome === 'dead', 10_000),
    'handled and dead-lettered', { handled: await get('handled'), dead: await get('dead') })
  t.equal((await post({ id: 'retry', ttlMs: 1000 })).statusCode, 201)
  t.ok(await until(async () => (await get('retry')).outcome === 'retrying', 5000), 'a retry is waiting at the switch')
  const legacy = createKeyspace(config.KEY_PREFIX, 4, from, app.store.keys.epoch)
  const keyOfHandled = runs.find((r) => r.id === 'handled')?.key

  // The switch, with the API and the worker running.
  const started = await ctl(config, 'migrate', 'start')
  t.equal(started.code, 0, started.err)
  t.match(started.err, /waiting \d+ ms for every API and worker/, 'says what it waits for')
  const record = JSON.parse(await app.redis.get(`${config.KEY_PREFIX}layout`) ?? '{}') as { epoch: string, from: { epoch: string } }
  // Format 1's generation counters are other keys than format 3's: a new epoch keeps the idempotencyKeys apart.
  t.equal(record.from.epoch === record.epoch, from === 2, 'format 3 keeps the epoch from format 2 only')
  t.ok(await until(() => app.store.keys.migration?.writes === 'new', 3000), 'the API followed the switch')
  t.equal(app.store.keys.format, 3)

  // Reads find every old hold.
  t.match(await get('p-long'), { status: 'pending' })
  t.match(await get('p-pay'), { status: 'pending', payload: { cart: [1, 2] } })
  t.match(await get('done'), { status: 'completed' })
  t.match(await get('cxl'), { status: 'cancelled' })
  t.match(await get('handled'), { status: 'expired', outcome: 'handled' })
  t.match(await get('dead'), { status: 'expired', outcome: 'dead' })
  // A live old hold refuses a create of its id; the request first made before the switch replays.
  const again = await post({ id: 'p-long', ttlMs: 60_000 })
  t.equal(again.statusCode, 409)
  t.equal(again.json<{ code: string }>().code, 'CHECKOUT_EXISTS')
  const replay = await post({ id: 'idem', ttlMs: 60_000 }, { 'idempotency-key': 'k-idem' })
  t.equal(replay.statusCode, 201)
  t.equal(replay.headers['idempotent-replayed'], 'true', 'the first reply, replayed')
  // Old pending holds change in place.
  { const r = await app.inject({ method: 'PATCH', url: '/checkout/p-long', ...json({ ttlMs: 30_000 }) });  t.equal(r.statusCode, 200, r.body) }
  { const r = await app.inject({ method: 'POST', url: '/checkout/p-pay/complete', headers: { 'idempotency-key': 'k-end' } });  t.equal(r.statusCode, 200, r.body) }
  const endAgain = await app.inject({ method: 'POST', url: '/checkout/p-pay/complete', headers: { 'idempotency-key': 'k-end' } })
  t.equal(endAgain.statusCode, 200, 'a retried complete of an old hold meets its first reply')
  t.match(await get('p-pay'), { status: 'completed' })
  // A re-created id of an ended old hold and a new id both go to format 3.
  for (const id of ['new-1', 'cxl']) t.equal((await post({ id, ttlMs: 1000 })).statusCode, 201)
  t.equal(await app.redis.zscore(legacy.order('new-1').deadlines, 'new-1'), null, 'not in the old deadline index')
  t.equal(await app.redis.exists(legacy.order('new-1').timer), 0, 'no old timer key')

  const early = await ctl(config, 'migrate', 'finish', '--json')
  t.equal(early.code, 1, 'finish refused while old holds are pending')
  t.match(JSON.parse(early.out), { error: { code: 'REFUSED' } })
  t.ok((await status(config)).left.pending >= 2, 'status counts the old pending holds')

  // A rolling restart while migrating: a worker started now drains the old layout too.
  await worker.close(2000)
  const second = await testWorker(config, [handler])
  t.teardown(() => second.close(2000))
  t.equal((await app.inject({ method: 'POST', url: '/checkout/p-long/complete' })).statusCode, 200)
  t.equal((await app.inject({ method: 'DELETE', url: '/checkout/idem' })).statusCode, 200)
  t.ok(await until(() => [...soon, 'retry', 'new-1', 'cxl'].every((id) => successes(id) >= 1), 15_000), 'old and new holds expire')
  if (from === 1) {
    // Format 1 has its own shard bases: its dead letters are replayed there, by the old layout's pipeline.
    deadHeals = true
    t.equal((await status(config)).left.deadLetters, 1, 'the old dead letter is counted')
    t.equal((await ctl(config, 'replay', 'dead')).code, 0, 'checkoutctl replay reaches the old layout')
    t.ok(await until(() => successes('dead') === 1, 8000), 'the replayed old dead letter ran')
  }
  t.ok(await until(async () => (await status(config)).left.pending + (await status(config)).left.jobs.total === 0, 10_000), 'old layout drained')
  if (from === 1) {
    const { left } = await status(config)
    t.ok(left.endedHolds > 0 && left.idempotencyRecords > 0, 'old ended holds and idempotency records are counted')
    t.equal((await ctl(config, 'migrate', 'finish')).code, 1, 'finish waits for them')
    // What their retention and 24 h TTL do: expire them (format 1 tags have no '.').
    for await (const batch of (app.redis as Redis).scanStream({ match: `${config.KEY_PREFIX}{*}:*`, count: 1000 })) {
      for (const key of batch as string[]) if (/\{\d+\}:(order|idem):/.test(key)) await app.redis.pexpire(key, 1)
    }
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  t.same((await status(config)).left, { pending: 0, jobs: { total: 0, due: 0, running: 0 }, deadLetters: 0, endedHolds: 0, idempotencyRecords: 0 })

  const finished = await ctl(config, 'migrate', 'finish')
  t.equal(finished.code, 0, finished.err)
  t.ok(await until(() => app.store.keys.migration === undefined, 3000), 'the API follows the end of the migration')
  t.equal((await post({ id: 'after', ttlMs: 1000 })).statusCode, 201)
  t.ok(await until(() => successes('after') === 1, 8000), 'format 3 alone expires holds')

  // Exactly once: every expiry ran its handler to success once, with the key it had before the switch.
  await new Promise((resolve) => setTimeout(resolve, 300))
  for (const id of [...soon, 'handled', 'retry', 'new-1', 'cxl', 'after']) t.equal(successes(id), 1, `${id}: one successful run`)
  t.equal(runs.filter((r) => r.id === 'retry').length, 2, 'the old retry ran once more, not twice')
  t.equal(runs.find((r) => r.id === 'handled')?.key, keyOfHandled)
  const retryKeys = new Set(runs.filter((r) => r.id === 'retry').map((r) => r.key))
  t.equal(retryKeys.size, 1, 'a retry after the switch carries the idempotencyKey of its first run')
  t.equal((await ctl(config, 'migrate', 'start')).code, 1, 'start refuses a prefix on format 3')
}

t.test('format 2 to 3 while an API and a worker run', async (t) => await migrate(t, 2))
t.test('format 1 to 3 while an API and a worker run', async (t) => await migrate(t, 1))

t.test('migrate needs a recorded prefix and one of its actions', async (t) => {
  const config = testConfig(redis.url, { KEY_FORMAT: '2' })
  const none = await ctl(config, 'migrate', 'start', '--json')
  t.equal(none.code, 1)
  t.match(JSON.parse(none.out), { error: { code: 'REFUSED' } })
  t.equal((await ctl(config, 'migrate', 'sideways')).code, 2)
  const r = createRedis({ url: redis.url, role: 'worker' })
  t.teardown(() => closeRedis(r))
  t.equal(await r.exists(`${config.KEY_PREFIX}layout`), 0, 'a refused start records nothing')
})
