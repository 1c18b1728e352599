import t from 'tap'
import { createHolds, expectExactlyOnce, scenario } from '../helpers/fault.js'

// 30,000 background holds here keep the suite within its time budget; the benchmark's scenario A runs 100,000.
t.test('30,000 holds due in 30 minutes plus 2,000 due within 10 s: all 2,000 handled once', async (t) => {
  const s = await scenario(t)
  await createHolds(s.store, 30_000, 'background', () => 30 * 60_000, 200)
  await s.startWorkers(1)
  const ids = await createHolds(s.store, 2000, 'due', (i) => 1000 + Math.floor((i / 2000) * 9000))
  await expectExactlyOnce(t, s, ids, 40_000)
})
