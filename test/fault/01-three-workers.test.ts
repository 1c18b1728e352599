import t from 'tap'
import { createHolds, expectExactlyOnce, scenario } from '../helpers/fault.js'

t.test('3 workers, 2,000 holds due within 5 s: each handled exactly once', async (t) => {
  const s = await scenario(t)
  const workers = await s.startWorkers(3)
  const ids = await createHolds(s.store, 2000, 'three', (i) => 1000 + Math.floor((i / 2000) * 4000))
  await expectExactlyOnce(t, s, ids, 30_000)
  const byPid = new Set((await import('../helpers/processes.js')).readRecords(s.record).map((r) => r.pid))
  t.ok(byPid.size >= 2, `work spread over ${byPid.size} of ${workers.length} workers`)
})
