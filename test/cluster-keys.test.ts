import calculateSlot from 'cluster-key-slot'
import { pino } from 'pino'
import t from 'tap'
import { createKeyspace } from '../src/keys.js'
import { balancedTag, keySlot, targetSlots } from '../src/shard-tags.js'
import { ensureLayout, LayoutMismatchError, openKeyspace } from '../src/store/layout.js'
import { testConfig } from './helpers/app.js'
import { startRedis } from './helpers/redis.js'

/**
 * Key format 2: shard tags chosen so the shards spread evenly over the
 * masters of a cluster, and the layout record that keeps data written with
 * format 1 on its old tags.
 */
const log = pino({ level: 'silent' })

t.test('our slot function is the cluster\'s', async (t) => {
  // (Not `x{}{y}`: Redis hashes all of it, as keySlot does (CLUSTER KEYSLOT says 14166); the package says 15133.)
  for (const key of ['a', 'ce:{3}:order:x', 'ce:{0.13}:timer:a:b', '{}x', 'foo{bar}{zap}', '日本', 'user:{1000}.following']) {
    t.equal(keySlot(key), calculateSlot(key), key)
  }
})

t.test('format 2: each shard in the middle of its slice of the slot space, every key of an order in one slot', async (t) => {
  for (const shards of [1, 3, 16, 48, 1024]) {
    for (const shard of [0, Math.floor(shards / 2), shards - 1]) {
      const [from, to] = targetSlots(shard, shards)
      const slot = keySlot(`{${balancedTag(shard, shards)}}`)
      t.ok(slot >= from && slot < to, `${shard} of ${shards}: slot ${slot} in [${from}, ${to})`)
    }
  }
  const keys = createKeyspace('ce:', 16, 2)
  t.equal(new Set(keys.tags).size, 16, 'distinct tags')
  for (const id of ['a', 'order-1001', 'x.y_z:1-2']) {
    const k = keys.order(id)
    const slots = new Set([k.order, k.timer, k.deadlines, k.jobs, k.dead, k.job(`3:${id}`), k.owner, k.held('w'), k.holds, k.claimRecord('w'), k.outbox, k.relayLock].map(keySlot))
    t.equal(slots.size, 1, id)
    t.same(keys.parseTimerKey(k.timer), { id, shard: k.shard }, 'its timer key parses back')
    t.equal(createKeyspace('ce:', 16, 1).parseTimerKey(k.timer), undefined, 'format 1 does not read format 2 timer keys')
  }
  t.equal(keys.shardOf('order-1001'), createKeyspace('ce:', 16, 1).shardOf('order-1001'), 'an order is in the same shard in both formats')
})

t.test('format 3: the packed structures of a shard are in its slot, and its one timer key parses to the shard', async (t) => {
  const keys = createKeyspace('ce:', 16, 3)
  t.same(keys.tags, createKeyspace('ce:', 16, 2).tags, 'the tags of format 2')
  for (const id of ['a', 'order-1001']) {
    const k = keys.order(id)
    const b = k.base
    const slots = new Set([k.table, k.index, k.shardTimer, `${b}b:7`, `${b}b:7.1`, `${b}i:3`, `${b}pk:0123456789abcdef0123`, `${b}pl:${id}`,
      k.order, k.jobs, k.holds, k.outbox].map(keySlot))
    t.equal(slots.size, 1, id)
    t.same(keys.parseTimerKey(k.shardTimer), { id: '', shard: k.shard }, 'the shard timer parses to its shard')
    t.equal(keys.parseTimerKey(k.timer), undefined, 'a per-hold timer key of format 2 is not read')
    t.equal(createKeyspace('ce:', 16, 2).parseTimerKey(k.shardTimer), undefined, 'format 2 does not read the shard timer')
  }
})

t.test('the layout record keeps each prefix on its format', async (t) => {
  const redis = await startRedis()
  t.teardown(redis.stop)
  const client = redis.client()
  const old = testConfig(redis.url).KEY_PREFIX
  await ensureLayout(client, createKeyspace(old, 16))
  const adopted = await openKeyspace(client, old, 16, log, 2)
  t.equal(adopted.format, 1, 'data recorded with format 1 keeps format 1, whatever a new process would pick')
  t.equal(adopted.base(3), `${old}{3}:`)

  const fresh = testConfig(redis.url).KEY_PREFIX
  const opened = await openKeyspace(client, fresh, 16, log, 2)
  t.equal(opened.format, 2, 'a new prefix gets the format asked for')
  t.match(JSON.parse(await client.get(`${fresh}layout`) ?? '{}'), { version: 2, shards: 16 })
  await t.rejects(ensureLayout(client, createKeyspace(fresh, 16, 1)), LayoutMismatchError, 'a process naming keys with format 1 refuses the format 2 data')
  await t.rejects(ensureLayout(client, createKeyspace(old, 16, 2)), /uses key format 1 .* names its keys with format 2/)
  const future = testConfig(redis.url).KEY_PREFIX
  await client.set(`${future}layout`, JSON.stringify({ version: 9, shards: 16, prefix: future, since: 'then' }))
  await t.rejects(openKeyspace(client, future, 16, log), /uses key format 9; this release reads formats 1, 2, 3/, 'a format this release does not know is refused')
})
