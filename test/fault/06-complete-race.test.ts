import t from 'tap'
import { endHold } from '../../src/store/checkout-store.js'
import { createHolds, scenario } from '../helpers/fault.js'
import { successCounts } from '../helpers/processes.js'
import { until } from '../helpers/worker.js'

t.test('complete vs expiry at the deadline ±10 ms: completed or expired, never both', async (t) => {
  const s = await scenario(t)
  await s.startWorkers(2)
  const ttl = 2000
  const created = Date.now()
  const ids = await createHolds(s.store, 500, 'race', () => ttl)
  const outcomes = new Map<string, 'completed' | 'expired'>()
  await Promise.all(ids.map(async (id, i) => {
    const at = created + ttl + (i % 21) - 10
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
})
