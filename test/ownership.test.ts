import fc from 'fast-check'
import t from 'tap'
import { assignShards } from '../src/expiry/ownership.js'

/**
 * The shard assignment every worker computes from the membership
 * (src/expiry/ownership.ts): the same owners whatever the order the members
 * are listed in, an even share (no worker owns more than one shard above
 * another), and a join or a leave moves few shards.
 */
const token = fc.uuid()
const members = fc.uniqueArray(token, { minLength: 1, maxLength: 12 })
const shards = fc.integer({ min: 1, max: 128 })

t.test('every shard has one owner among the members, each owning ⌊S/n⌋ or ⌈S/n⌉', async (t) => {
  fc.assert(fc.property(members, shards, (m, s) => {
    const owners = assignShards(m, s)
    if (owners.length !== s || owners.some((o) => !m.includes(o))) return false
    const load = m.map((w) => owners.filter((o) => o === w).length)
    return Math.max(...load) - Math.min(...load) <= 1 && load.reduce((a, b) => a + b, 0) === s
  }), { numRuns: 300 })
  t.pass('held for 300 random memberships')
})

t.test('the same owners whatever the order the members come in', async (t) => {
  fc.assert(fc.property(members, shards, fc.nat(), (m, s, seed) => {
    const shuffled = [...m].sort((a, b) => ((a.charCodeAt(seed % a.length) ^ seed) - (b.charCodeAt(seed % b.length) ^ seed)))
    return JSON.stringify(assignShards(m, s)) === JSON.stringify(assignShards(shuffled, s))
  }), { numRuns: 200 })
  t.pass('held for 200 random memberships')
})

t.test('a join or a leave moves about the share of one worker, not every shard', async (t) => {
  const ratios: number[] = []
  fc.assert(fc.property(fc.uniqueArray(token, { minLength: 3, maxLength: 9 }), token, fc.constantFrom(16, 64), (m, joiner, s) => {
    fc.pre(!m.includes(joiner))
    const before = assignShards(m, s)
    const joined = assignShards([...m, joiner], s)
    const left = assignShards(m.slice(1), s)
    const share = (n: number) => Math.ceil(s / n)
    const join = before.filter((o, shard) => joined[shard] !== o).length
    const leave = before.filter((o, shard) => left[shard] !== o).length
    ratios.push(join / share(m.length + 1), leave / share(m.length))
    // Shares of 2 or 3 shards leave little room to even out: 2 more are allowed.
    return join <= 3 * share(m.length + 1) + 2 && leave <= 3 * share(m.length) + 2
  }), { numRuns: 150, seed: 42 })
  const mean = ratios.reduce((a, b) => a + b, 0) / ratios.length
  t.comment(`shards moved, in shares of one worker: mean ${mean.toFixed(2)}, worst ${Math.max(...ratios).toFixed(2)}`)
  t.ok(mean < 1.6, 'about one share on average')
})

t.test('no members, no owners', async (t) => {
  t.same(assignShards([], 16), [])
  t.same(assignShards(['a', 'a'], 2), ['a', 'a'], 'a member listed twice counts once')
})
