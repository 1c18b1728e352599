import t from 'tap'
import { createHolds, expectExactlyOnce, scenario } from '../helpers/fault.js'

t.test('Redis restarted from AOF with holds due during the downtime: every order handled once', async (t) => {
  const s = await scenario(t, { redis: { restartable: true, appendonly: true } })
  await s.startWorkers(2)
  const early = await createHolds(s.store, 200, 'early', (i) => 1000 + (i % 10) * 50)
  const during = await createHolds(s.store, 300, 'during', (i) => 2500 + (i % 10) * 100)
  const late = await createHolds(s.store, 200, 'late', (i) => 7000 + (i % 10) * 100)
  await new Promise((resolve) => setTimeout(resolve, 1800))
  await s.redis.kill({ crash: true })
  await new Promise((resolve) => setTimeout(resolve, 3000)) // "during" holds fall due now
  await s.redis.start()
  await expectExactlyOnce(t, s, [...early, ...during, ...late], 30_000)
})
