import t from 'tap'
import { createHold, getCheckout } from '../../src/store/checkout-store.js'
import { scenario } from '../helpers/fault.js'
import { readRecords } from '../helpers/processes.js'
import { until } from '../helpers/worker.js'

/**
 * SIGTERM: the worker finishes what it can within SHUTDOWN_TIMEOUT_MS and
 * gives back what still runs, so the other worker starts it at once instead
 * of waiting for the stopped worker's heartbeat to lapse (20 s here).
 */
t.test('SIGTERM: finished runs are kept, unfinished ones go to the other worker at once', async (t) => {
  const s = await scenario(t, { env: { EXPIRY_LEASE_MS: '20000', EXPIRY_HEARTBEAT_MS: '200' } })
  // Its handlers take 30 s (the handler ignores its abort signal); the other worker's return at once.
  const [stopping] = await s.startWorkers(1, { SHUTDOWN_TIMEOUT_MS: '1500', RECORD_SLEEP_MS: '30000' })
  await createHold(s.store, { id: 'quick', ttlMs: 1000, payload: { sleepMs: 500 } })
  const slow = ['slow-0', 'slow-1', 'slow-2']
  for (const id of slow) await createHold(s.store, { id, ttlMs: 1000 })
  // The other worker starts once the first one has claimed every order.
  await new Promise((resolve) => setTimeout(resolve, 1200))
  await s.startWorkers(1, { RECORD_SLEEP_MS: '0' })

  const { code, ms } = await stopping!.signal('SIGTERM')
  const stoppedAt = Date.now()
  t.equal(code, 0, 'exits 0')
  t.ok(ms < 4000, `within the shutdown deadline (${ms} ms)`)
  t.match(stopping!.output(), /given back for another worker/)

  t.ok(await until(async () => {
    const views = await Promise.all(slow.map(async (id) => await getCheckout(s.store, id)))
    return views.every((v) => v.outcome === 'handled')
  }, 10_000, 50), 'the other worker handled the unfinished orders')
  const runs = readRecords(s.record)
  const rerun = runs.filter((r) => slow.includes(r.id))
  t.same(rerun.map((r) => [r.id, r.attempt, r.pid]).sort(), slow.map((id) => [id, 1, s.workers[1]!.proc.pid]),
    'each unfinished order ran once more, on the other worker, its interrupted attempt given back')
  const lastStart = Math.max(...rerun.map((r) => r.startedAt))
  t.ok(lastStart - stoppedAt < 2000, `started ${lastStart - stoppedAt} ms after the stop, not after the 20 s lease`)
  t.match(runs.filter((r) => r.id === 'quick'), [{ attempt: 1, ok: true, pid: stopping!.proc.pid }], 'the quick one finished before the stop, once')
  t.equal(runs.filter((r) => r.id === 'quick').length, 1)
})
