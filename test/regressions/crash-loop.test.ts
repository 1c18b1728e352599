import t from 'tap'
import { getCheckout } from '../../src/store/checkout-store.js'
import { listDeadLetters } from '../../src/store/dead-letters.js'
import { createHolds, scenario } from '../helpers/fault.js'
import { fileURLToPath } from 'node:url'
import { RECORD_HANDLER, readRecords, startWorker, successCounts, type Child } from '../helpers/processes.js'
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

const TIMER_CRASH_HANDLER = fileURLToPath(new URL('../fixtures/timer-crash-handler.mjs', import.meta.url))

/**
 * A handler whose bug throws from a timer: an uncaught exception, which the
 * worker turns into an orderly exit. That exit is not a SIGTERM: the
 * attempts that were running count, so the order ends dead after
 * EXPIRY_MAX_ATTEMPTS instead of crash-looping every worker for ever, and
 * the orders that ran beside it are handled exactly once.
 */
t.test('an order whose handler throws from a timer ends dead after the maximum; workers restarted by a supervisor handle the rest once', async (t) => {
  const maxAttempts = 3
  const s = await scenario(t, {
    env: {
      EXPIRY_HANDLERS: `${TIMER_CRASH_HANDLER},${RECORD_HANDLER}`,
      CRASH_TIMER_IDS: 'bomb-0',
      EXPIRY_MAX_ATTEMPTS: String(maxAttempts),
      EXPIRY_LEASE_MS: '1000',
      EXPIRY_HEARTBEAT_MS: '100',
      SHUTDOWN_TIMEOUT_MS: '500'
    }
  })
  const [bomb] = await createHolds(s.store, 1, 'bomb', () => 1500)
  // The others fall due over the whole run, so some are running whenever the bomb goes off.
  const calm = await createHolds(s.store, 30, 'calm', (i) => 1000 + i * 300)
  const done = async () => {
    if ((await getCheckout(s.store, bomb!)).outcome !== 'dead') return false
    for (const id of calm) if ((await getCheckout(s.store, id)).outcome !== 'handled') return false
    return true
  }
  // The supervisor: two worker slots, each restarted when its worker exits; bounded in restarts and time.
  const slots: Array<Child | undefined> = [undefined, undefined]
  let starts = 0
  const deadline = Date.now() + 90_000
  while (Date.now() < deadline && starts < 30 && !(await done())) {
    for (let i = 0; i < slots.length; i++) {
      const w = slots[i]
      if (w && w.proc.exitCode === null && w.proc.signalCode === null) continue
      const started = await startWorker(s.env)
      s.workers.push(started)
      slots[i] = started
      starts++
    }
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  t.ok(await done(), `the bomb is dead and the others handled (${starts} worker starts)`)
  const view = await getCheckout(s.store, bomb!)
  t.match(view, { outcome: 'dead', attempts: maxAttempts })
  const bombRuns = readRecords(s.record).filter((r) => r.id === bomb)
  t.equal(bombRuns.length, maxAttempts, 'the bomb ran EXPIRY_MAX_ATTEMPTS times, no more')
  t.match(await listDeadLetters(s.store, s.store.keys.shardOf(bomb!)), [{ id: bomb, attempts: maxAttempts }])
  const counts = successCounts(s.record)
  t.same(calm.filter((id) => counts.get(id) !== 1), [], 'every other order handled exactly once')
})
