import t from 'tap'
import { createHolds, expectExactlyOnce, scenario } from '../helpers/fault.js'
import { readRecords } from '../helpers/processes.js'

/** How long before the kill a handler's return may be and its acknowledgement still not have left the process. */
const ACK_WINDOW_MS = 50

t.test('worker killed with SIGKILL while handlers run, then restarted: none lost, none twice', async (t) => {
  const s = await scenario(t, { env: { RECORD_SLEEP_MS: '400', EXPIRY_LEASE_MS: '1500' } })
  const [first] = await s.startWorkers(1)
  const ids = await createHolds(s.store, 300, 'kill', (i) => 1000 + (i % 20) * 50)
  // Kill it while the first batch of handlers sleeps.
  await new Promise((resolve) => setTimeout(resolve, 1600))
  const killedAt = Date.now()
  first!.proc.kill('SIGKILL')
  await first!.exited
  const doneBeforeKill = readRecords(s.record).length
  // A handler that returned in the last moments before the kill may not have had its
  // acknowledgement sent: that order runs again, as promised. Any other second run is a bug.
  const finishedAtKill = new Set(readRecords(s.record)
    .filter((r) => r.ok && r.pid === first!.proc.pid && r.at >= killedAt - ACK_WINDOW_MS).map((r) => r.id))
  t.ok(doneBeforeKill < ids.length, `killed mid-run (${doneBeforeKill} of ${ids.length} done)`)
  await new Promise((resolve) => setTimeout(resolve, 500))
  await s.startWorkers(1)
  t.comment(`${finishedAtKill.size} handlers returned within ${ACK_WINDOW_MS} ms before the kill`)
  await expectExactlyOnce(t, s, ids, 30_000, (id) => finishedAtKill.has(id))
})
