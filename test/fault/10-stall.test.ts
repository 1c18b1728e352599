import t from 'tap'
import { createHold, getCheckout } from '../../src/store/checkout-store.js'
import { scenario } from '../helpers/fault.js'
import { readRecords } from '../helpers/processes.js'
import { until } from '../helpers/worker.js'

/**
 * A handler that busy-loops for 2 s stalls its worker's event loop: no
 * heartbeat goes out meanwhile. With the default EXPIRY_LEASE_MS the worker
 * keeps its claims: the other worker, heartbeating beside it, does not take
 * the order over, and the handler runs once.
 */
t.test('a 2 s event-loop stall keeps the claim: no second run, no duplicate success', async (t) => {
  const s = await scenario(t)
  // Two workers: whichever claims the order stalls, the other one heartbeats beside it.
  await s.startWorkers(2)
  // The stall starts 150 ms into the run, so the last renewal is as old as a heartbeat interval allows.
  // One order: two handlers busy-looping at once would stall the loop for twice as long.
  const ids = ['stall-0']
  for (const id of ids) await createHold(s.store, { id, ttlMs: 1000, payload: { sleepMs: 150, busyMs: 2000 } })
  t.ok(await until(async () => {
    const views = await Promise.all(ids.map(async (id) => await getCheckout(s.store, id)))
    return views.every((v) => v.outcome === 'handled')
  }, 15_000, 100), 'all handled')
  await new Promise((resolve) => setTimeout(resolve, 3500))
  const runs = readRecords(s.record)
  t.equal(runs.length, ids.length, 'one run per order')
  t.ok(runs.every((r) => r.attempt === 1 && r.ok), 'each on its first attempt: not taken over')
  for (const id of ids) t.match(await getCheckout(s.store, id), { outcome: 'handled', attempts: 1 })
})
