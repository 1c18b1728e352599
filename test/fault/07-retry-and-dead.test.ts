import t from 'tap'
import { getCheckout } from '../../src/store/checkout-store.js'
import { listDeadLetters } from '../../src/store/dead-letters.js'
import { createHolds, scenario } from '../helpers/fault.js'
import { readRecords } from '../helpers/processes.js'
import { until } from '../helpers/worker.js'

t.test('fails twice then succeeds: 3 runs, handled; always fails: dead letter with its error', async (t) => {
  const s = await scenario(t, {
    env: { RECORD_FAIL_IDS: 'flaky-0:2,broken-0:always', EXPIRY_BACKOFF_MS: '100', EXPIRY_MAX_ATTEMPTS: '4' }
  })
  await s.startWorkers(2)
  await createHolds(s.store, 1, 'flaky', () => 1000)
  await createHolds(s.store, 1, 'broken', () => 1000)
  t.ok(await until(async () => (await getCheckout(s.store, 'broken-0')).outcome === 'dead', 15_000, 100), 'broken ends dead')
  t.ok(await until(async () => (await getCheckout(s.store, 'flaky-0')).outcome === 'handled', 15_000, 100), 'flaky ends handled')

  const runs = readRecords(s.record)
  const flaky = runs.filter((r) => r.id === 'flaky-0')
  t.same(flaky.map((r) => [r.attempt, r.ok]), [[1, false], [2, false], [3, true]])
  t.match(await getCheckout(s.store, 'flaky-0'), { status: 'expired', outcome: 'handled', attempts: 3 })

  const broken = runs.filter((r) => r.id === 'broken-0')
  t.equal(broken.length, 4, 'EXPIRY_MAX_ATTEMPTS runs')
  t.ok(broken.every((r) => !r.ok))
  t.match(await getCheckout(s.store, 'broken-0'), { outcome: 'dead', attempts: 4, lastError: 'planned failure 4' })
  const dead = await listDeadLetters(s.store, s.store.keys.shardOf('broken-0'))
  t.match(dead, [{ id: 'broken-0', attempts: 4, lastError: 'planned failure 4', payload: { n: 0 } }])
})
