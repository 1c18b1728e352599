import t from 'tap'
import { createHolds, expectExactlyOnce, scenario } from '../helpers/fault.js'
import { readRecords } from '../helpers/processes.js'

t.test('worker killed with SIGKILL while handlers run, then restarted: none lost, none twice', async (t) => {
  const s = await scenario(t, { env: { RECORD_SLEEP_MS: '400', EXPIRY_LEASE_MS: '1500' } })
  const [first] = await s.startWorkers(1)
  const ids = await createHolds(s.store, 300, 'kill', (i) => 1000 + (i % 20) * 50)
  // Kill it while the first batch of handlers sleeps.
  await new Promise((resolve) => setTimeout(resolve, 1600))
  first!.proc.kill('SIGKILL')
  await first!.exited
  const doneBeforeKill = readRecords(s.record).length
  t.ok(doneBeforeKill < ids.length, `killed mid-run (${doneBeforeKill} of ${ids.length} done)`)
  await new Promise((resolve) => setTimeout(resolve, 500))
  await s.startWorkers(1)
  await expectExactlyOnce(t, s, ids, 30_000)
})
