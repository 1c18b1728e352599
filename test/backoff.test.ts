import t from 'tap'
import { backoffDelay } from '../src/expiry/runner.js'

t.test('retry delay doubles per attempt, with half of it random, capped at one hour', async (t) => {
  t.equal(backoffDelay(1000, 1, () => 0), 500, 'attempt 1: between 500 and 1000')
  t.equal(backoffDelay(1000, 1, () => 1), 1000)
  t.equal(backoffDelay(1000, 2, () => 0), 1000, 'attempt 2: between 1000 and 2000')
  t.equal(backoffDelay(1000, 3, () => 1), 4000, 'attempt 3: up to 4000')
  t.equal(backoffDelay(1000, 40, () => 1), 3_600_000, 'capped')
  t.equal(backoffDelay(1000, 40, () => 0), 1_800_000)
  for (let i = 0; i < 100; i++) {
    const d = backoffDelay(100, 2)
    t.ok(d >= 100 && d <= 200, `random delay ${d} within [100, 200]`)
  }
})
