import t from 'tap'
import type { Invocation } from '../src/cli/command.js'
import { runCli, toCliError } from '../src/cli/run.js'
import { closeRedis } from '../src/redis/connection.js'
import { createHold } from '../src/store/checkout-store.js'
import { countDeadLetters } from '../src/store/dead-letters.js'
import { failJob } from '../src/store/expiry-jobs.js'
import { testConfig } from './helpers/app.js'
import { startRedis } from './helpers/redis.js'
import { testStore } from './helpers/worker.js'
import { claimAsOwner } from './helpers/own.js'
import { beatMembership, leaveMembership, ownShard } from '../src/store/membership.js'

/** The commands run in-process (what bin/checkoutctl.ts calls), their output read from a captured Io. */
const redis = await startRedis()
t.teardown(redis.stop)
const config = testConfig(redis.url, { KEY_SHARDS: '2' })
const store = testStore(config)
t.teardown(() => closeRedis(store.redis))
const env = { REDIS_URL: redis.url, KEY_PREFIX: config.KEY_PREFIX, KEY_SHARDS: '2', KEY_FORMAT: String(config.KEY_FORMAT) }

async function cli (command: Invocation['command'], json = true, extraEnv: Record<string, string> = {}) {
  let out = ''
  let err = ''
  const code = await runCli({ command, json }, { ...env, ...extraEnv }, { out: (s) => { out += s }, err: (s) => { err += s } })
  return { code, out, err, doc: json && out ? JSON.parse(out) as Record<string, unknown> : undefined }
}

t.test('read commands on a prefix with no data warn and write nothing', async (t) => {
  const stats = await cli({ name: 'stats' })
  t.equal(stats.code, 0)
  t.match(stats.err, /nothing is stored under KEY_PREFIX/)
  t.match(stats.doc, { pending: 0, deadLetters: 0, found: { eventShare: null } })
  t.equal(await store.redis.exists(`${config.KEY_PREFIX}layout`), 0, 'no layout recorded by a read')
})

t.test('every command, from holds to dead letters and back', async (t) => {
  for (const id of ['a', 'b', 'c', 'd']) await createHold(store, { id, ttlMs: 1000, payload: { id } })
  await createHold(store, { id: 'held', ttlMs: 600_000 })
  await new Promise((resolve) => setTimeout(resolve, 1050))
  const lease = { token: 'w', runningMs: 10_000, maxAttempts: 1 }
  for (let shard = 0; shard < 2; shard++) {
    for (const job of (await claimAsOwner(store, shard, 100, lease, shard + 1)).jobs) await failJob(store, job, 'w', 'down', 1, 0)
  }
  t.equal(await countDeadLetters(store), 4)

  t.match((await cli({ name: 'get', id: 'a' })).doc, { id: 'a', status: 'expired', outcome: 'dead', lastError: 'down' })
  t.match((await cli({ name: 'get', id: 'held' }, false)).out, /^status +pending$/m)
  t.match((await cli({ name: 'list', status: 'pending', limit: 10 })).doc, { items: [{ id: 'held' }], next: null })
  t.match((await cli({ name: 'list', status: 'pending', limit: 10 }, false)).out, /held/)
  const dead = await cli({ name: 'list', status: 'dead', limit: 3 })
  t.equal((dead.doc?.items as unknown[]).length, 3)
  t.type(dead.doc?.next, 'string')
  const rest = await cli({ name: 'list', status: 'dead', limit: 3, cursor: dead.doc?.next as string }, false)
  t.match(rest.out, /^SHARD +ID/)
  t.match(rest.out, /no more pages/)
  t.match((await cli({ name: 'list', status: 'dead', limit: 3, cursor: '1:99999999999999:zz' }, false)).out, /no dead letters on this page/)

  t.match((await cli({ name: 'replay', id: 'a' })).doc, { id: 'a', replayed: 1 })
  t.match((await cli({ name: 'replay', id: 'a' })).doc, { error: { code: 'NOT_FOUND' } })
  t.match((await cli({ name: 'replay-all-dead' }, false)).out, /^replayed +3$/m)
  t.equal(await countDeadLetters(store), 0)

  const refused = await cli({ name: 'purge-dead', yes: false })
  t.equal(refused.code, 2)
  t.match(refused.err, /Usage: checkoutctl/)
  t.match((await cli({ name: 'purge-dead', olderThanMs: 60_000, yes: false })).doc, { purged: 0, olderThanMs: 60_000 })
  t.match((await cli({ name: 'stats' }, false)).out, /^expiry jobs +4$/m)
})

t.test('stats shows the live workers, the shards each owns, and the shards without a live owner', async (t) => {
  await beatMembership(store, 'owner-a')
  await beatMembership(store, 'owner-b')
  await ownShard(store, 0, 'owner-a')
  await ownShard(store, 1, 'gone-c')
  const json = await cli({ name: 'stats' })
  t.match(json.doc, { workers: [{ token: 'owner-a', draining: false, shards: [0] }, { token: 'owner-b', draining: false, shards: [] }], unownedShards: [1] })
  await leaveMembership(store, 'owner-b', 'drain')
  const text = (await cli({ name: 'stats' }, false)).out
  t.match(text, /^workers +2$/m)
  t.match(text, /^ {2}owner-a +owns 1 shard$/m)
  t.match(text, /^ {2}owner-b +stopping, owns no shard$/m)
  t.match(text, /^shards without a live owner +1$/m)
})

t.test('configuration and layout problems exit 1 with the reason', async (t) => {
  const bad = await cli({ name: 'stats' }, true, { KEY_SHARDS: 'many' })
  t.equal(bad.code, 1)
  t.match(bad.doc, { error: { code: 'CONFIG', message: /KEY_SHARDS/ } })
  const mismatch = await cli({ name: 'stats' }, true, { KEY_SHARDS: '3' })
  t.equal(mismatch.code, 1)
  t.match(mismatch.doc, { error: { code: 'LAYOUT_MISMATCH' } })
  t.match(toCliError(new Error('script bug'), undefined), { code: 'INTERNAL', exitCode: 1, message: 'script bug' })
})
