import t from 'tap'
import { getCheckout } from '../../src/store/checkout-store.js'
import { listDeadLetters } from '../../src/store/dead-letters.js'
import { createHolds, scenario } from '../helpers/fault.js'
import { readRecords } from '../helpers/processes.js'
import { until } from '../helpers/worker.js'

/**
 * A handler that kills its worker every time never fails "normally", so the
 * dead-letter decision must happen when the job is claimed again: after
 * EXPIRY_MAX_ATTEMPTS runs the order is dead, and no worker runs it again.
 */
t.test('an order whose handler kills the worker every time ends in the dead-letter set', async (t) => {
  const s = await scenario(t, { env: { RECORD_CRASH_IDS: 'crash-0', EXPIRY_MAX_ATTEMPTS: '2', EXPIRY_LEASE_MS: '1000' } })
  const [id] = await createHolds(s.store, 1, 'crash', () => 1000)
  const dead = async () => (await getCheckout(s.store, id!)).outcome === 'dead'
  for (let restart = 0; restart < 5 && !(await dead()); restart++) {
    const [worker] = await s.startWorkers(1)
    // Each run either kills the worker or, once the attempts are used up, dead-letters the order.
    await Promise.race([worker!.exited, until(dead, 5000, 100)])
    if (worker!.proc.exitCode === null && worker!.proc.signalCode === null) worker!.proc.kill('SIGKILL')
    await worker!.exited
  }
  t.ok(await dead(), 'the order is dead-lettered')
  const crashes = readRecords(s.record).filter((r) => r.id === id)
  t.equal(crashes.length, 2, 'the handler ran EXPIRY_MAX_ATTEMPTS times, no more')
  const view = await getCheckout(s.store, id!)
  t.match(view, { status: 'expired', outcome: 'dead', attempts: 2, lastError: /worker stopped/ })
  t.match(await listDeadLetters(s.store, s.store.keys.shardOf(id!)), [{ id, attempts: 2 }])
})
