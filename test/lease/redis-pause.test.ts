import t from 'tap'
import { existsSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { getCheckout } from '../../src/store/checkout-store.js'
import { createHolds, expectExactlyOnce, scenario } from '../helpers/fault.js'
import { readRecords } from '../helpers/processes.js'
import { until } from '../helpers/worker.js'
import { pauseRedis, redisPid } from '../helpers/redis-pause.js'

const HANDLER = fileURLToPath(new URL('../fixtures/abortable-record-handler.mjs', import.meta.url))

/**
 * Redis hangs (SIGSTOP) for 2.6 s while handlers run on two worker
 * processes. Nobody can prove a lease meanwhile, but nobody can take one
 * over either: no worker is reaped, and a run aborted because Redis did not
 * answer is given back without costing an attempt. With
 * EXPIRY_MAX_ATTEMPTS=1 a counted abort would dead-letter the order.
 */
t.test('a 2.6 s Redis pause with handlers in flight: nobody reaped, no attempt counted, each order handled once', async (t) => {
  const s = await scenario(t, {
    redis: { extraArgs: [] },
    env: { EXPIRY_HANDLERS: HANDLER, EXPIRY_MAX_ATTEMPTS: '1', RECORD_SLEEP_MS: '4000' }
  })
  const workers = await s.startWorkers(2)
  const ids = await createHolds(s.store, 20, 'pause', () => 1000)
  // Every handler is sleeping once each has noted its start.
  const starts = () => existsSync(`${s.record}.started`) ? readFileSync(`${s.record}.started`, 'utf8').split('\n').filter(Boolean).length : 0
  t.ok(await until(() => starts() === ids.length, 10_000, 50), 'every order runs')
  await new Promise((resolve) => setTimeout(resolve, 300))
  await pauseRedis(await redisPid(s.redis.client()), 2600)

  await expectExactlyOnce(t, s, ids, 20_000)
  for (const id of ids) t.match(await getCheckout(s.store, id), { outcome: 'handled', attempts: 1 }, `${id}: handled, no attempt counted`)
  const output = workers.map((w) => w.output()).join('\n')
  t.notMatch(output, /took over the jobs/, 'no worker was reaped')
  const aborted = readRecords(s.record).filter((r) => !r.ok)
  t.comment(`runs aborted by the pause and given back: ${aborted.length} of ${ids.length}`)
})
