import t from 'tap'
import { createHolds, expectExactlyOnce, scenario } from '../helpers/fault.js'

t.test('subscriber connection killed during the window: every order handled once', async (t) => {
  const s = await scenario(t)
  await s.startWorkers(2)
  const ids = await createHolds(s.store, 1000, 'pubsub', (i) => 1000 + (i % 40) * 100)
  const admin = s.redis.client()
  let kills = 0
  for (let i = 0; i < 8; i++) {
    await new Promise((resolve) => setTimeout(resolve, 500))
    kills += Number(await admin.call('CLIENT', 'KILL', 'TYPE', 'pubsub'))
  }
  t.ok(kills >= 8, `killed subscriber connections ${kills} times`)
  await expectExactlyOnce(t, s, ids, 30_000)
})
