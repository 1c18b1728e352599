import t from 'tap'
import { createHold, endHold, getCheckout } from '../../src/store/checkout-store.js'
import { expectHandledInRedis, scenario } from '../helpers/fault.js'
import { successCounts } from '../helpers/processes.js'
import { until } from '../helpers/worker.js'

t.test('complete vs expiry at the deadline ±10 ms: completed or expired, never both', async (t) => {
  const s = await scenario(t)
  await s.startWorkers(2)
  // 500 completions at the deadline ±10 ms, plus a few clearly before and
  // after it so that both outcomes surely occur.
  const offsets = [
    ...Array.from({ length: 500 }, (_v, i) => (i % 21) - 10),
    ...Array.from({ length: 10 }, () => -500),
    ...Array.from({ length: 10 }, () => 500)
  ]
  const deadlines = await Promise.all(offsets.map(async (_o, i) =>
    (await createHold(s.store, { id: `race-${i}`, ttlMs: 2500 })).expiresAt))
  const ids = offsets.map((_o, i) => `race-${i}`)
  const outcomes = new Map<string, 'completed' | 'expired'>()
  await Promise.all(ids.map(async (id, i) => {
    const at = deadlines[i]! + offsets[i]!
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, at - Date.now())))
    try {
      await endHold(s.store, id, 'completed')
      outcomes.set(id, 'completed')
    } catch (err) {
      if ((err as { code?: string }).code !== 'CHECKOUT_NOT_PENDING') throw err
      outcomes.set(id, 'expired')
    }
  }))
  const expired = ids.filter((id) => outcomes.get(id) === 'expired')
  const completed = ids.filter((id) => outcomes.get(id) === 'completed')
  t.equal(expired.length + completed.length, ids.length)
  t.ok(expired.length > 0 && completed.length > 0, `both sides won sometimes (${completed.length} completed, ${expired.length} expired)`)
  await until(() => expired.every((id) => successCounts(s.record).has(id)), 15_000, 100)
  await new Promise((resolve) => setTimeout(resolve, 1500))
  const counts = successCounts(s.record)
  t.same(expired.filter((id) => counts.get(id) !== 1), [], 'every expired order handled exactly once')
  t.same(completed.filter((id) => counts.has(id)), [], 'no completed order reached the handler')
  await expectHandledInRedis(t, s, expired)
  const views = await Promise.all(completed.map(async (id) => await getCheckout(s.store, id)))
  t.same(views.filter((v) => v.status !== 'completed' || v.outcome !== undefined || v.attempts !== undefined).map((v) => v.id), [],
    'Redis records every completed order completed, with no handler outcome or attempt')
})
