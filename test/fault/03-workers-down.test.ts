import t from 'tap'
import { createHolds, expectExactlyOnce, scenario } from '../helpers/fault.js'

t.test('all workers down across the deadlines, started later: every order handled once', async (t) => {
  const s = await scenario(t)
  const ids = await createHolds(s.store, 500, 'down', (i) => 1000 + (i % 10) * 100)
  await new Promise((resolve) => setTimeout(resolve, 2500))
  await s.startWorkers(2)
  await expectExactlyOnce(t, s, ids, 20_000)
})
