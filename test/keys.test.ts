import calculateSlot from 'cluster-key-slot'
import t from 'tap'
import { createKeyspace } from '../src/keys.js'
import { scriptSources } from '../src/store/scripts.js'

const keys = createKeyspace('ce:', 16)

t.test('every key of an order and its shard index share one cluster slot', async (t) => {
  for (const id of ['a', 'order-1001', 'bf4dcf5b-a744-40c7-8f55-bf6481d70df3', 'x.y_z:1-2']) {
    const k = keys.order(id)
    const slots = new Set([k.order, k.timer, k.deadlines, k.jobs, k.dead, k.job(`3:${id}`), k.owner, k.held('w-1'), k.holds, k.claimRecord('w-1')].map((key) => calculateSlot(key)))
    t.equal(slots.size, 1, id)
    t.equal(k.shard, keys.shardOf(id))
  }
})

t.test('shards are stable and spread', async (t) => {
  t.equal(keys.shardOf('order-1001'), createKeyspace('other:', 16).shardOf('order-1001'), 'does not depend on the prefix')
  const used = new Set(Array.from({ length: 1000 }, (_v, i) => keys.shardOf(`order-${i}`)))
  t.equal(used.size, 16, 'all shards used')
  t.equal(createKeyspace('ce:', 1).shardOf('anything'), 0)
})

t.test('timer keys parse back to the order; foreign keys are ignored', async (t) => {
  const k = keys.order('order-1001')
  t.same(keys.parseTimerKey(k.timer), { id: 'order-1001', shard: k.shard })
  t.same(keys.parseTimerKey('ce:{3}:timer:with:colons'), keys.shardOf('with:colons') === 3 ? { id: 'with:colons', shard: 3 } : undefined)
  t.equal(keys.parseTimerKey('other:{1}:timer:x'), undefined, 'other prefix')
  t.equal(keys.parseTimerKey(k.order), undefined, 'not a timer key')
  t.equal(keys.parseTimerKey('ce:{99}:timer:x'), undefined, 'shard out of range')
  t.equal(keys.parseTimerKey(`ce:{${(k.shard + 1) % 16}}:timer:order-1001`), undefined, 'wrong shard for the id')
  t.equal(createKeyspace('a.b:', 4).parseTimerKey('aXb:{0}:timer:x'), undefined, 'prefix dots are literal')
})

t.test('every script declares KEYS, ARGV and its returns, and includes resolve', async (t) => {
  const sources = scriptSources()
  t.same(sources.map((s) => s.name).sort(), ['ack', 'claim', 'create', 'end', 'extend', 'fail', 'get', 'layout-epoch', 'members-beat', 'members-leave', 'next-due', 'own',
    'packed-claim', 'packed-create', 'packed-end', 'packed-extend', 'packed-get', 'packed-next-due', 'purge', 'relay-done', 'relay-take', 'release', 'replay'])
  for (const s of sources) {
    t.match(s.lua, /KEYS\[1\]/, `${s.name} names its keys`)
    t.match(s.lua, /Returns/, `${s.name} documents its returns`)
    t.notMatch(s.lua, /@include/, `${s.name} has its includes inlined`)
  }
})
