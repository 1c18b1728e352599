import t from 'tap'
import { createHolds, expectExactlyOnce, scenario } from '../helpers/fault.js'
import { getCheckout } from '../../src/store/checkout-store.js'
import { readRecords } from '../helpers/processes.js'

/**
 * Redis refuses writes (OOM under noeviction) for 3 s while holds fall due:
 * every claim fails. The worker backs off with jitter instead of retrying at
 * once, and logs the repeated failure once per interval with a count. Once
 * writes are accepted again every order is handled exactly once.
 */
t.test('claims refused with OOM for 3 s: backed off, logged once per interval, then each order handled once', async (t) => {
  const s = await scenario(t, { redis: { extraArgs: ['--maxmemory-policy', 'noeviction'] } })
  const [worker] = await s.startWorkers(1)
  const admin = s.redis.client()
  const ids = await createHolds(s.store, 40, 'oom', (i) => 2000 + (i % 20) * 40)
  const evalCalls = async () => {
    const info = await admin.info('commandstats')
    return [...info.matchAll(/cmdstat_eval(?:sha)?:calls=(\d+)/g)].reduce((sum, m) => sum + Number(m[1]), 0)
  }
  const warningsBefore = (worker!.output().match(/claim failed/g) ?? []).length
  await admin.config('SET', 'maxmemory', '1')
  // An outcome refused under OOM is another matter (the runner's): every hold falls due during the refusal.
  t.equal(readRecords(s.record).length, 0, 'no hold was due before writes were refused')
  const before = await evalCalls()
  const startedAt = Date.now()
  await new Promise((resolve) => setTimeout(resolve, 3000))
  const calls = await evalCalls() - before
  const seconds = (Date.now() - startedAt) / 1000
  await admin.config('SET', 'maxmemory', '0')
  const warnings = (worker!.output().match(/claim failed/g) ?? []).length - warningsBefore

  // Heartbeats: 16 shards every 200 ms (80/s); claims back off; a poll per shard every 5 s.
  const perSecond = calls / seconds
  t.comment(`during OOM: ${Math.round(perSecond)} script calls/s, ${warnings} claim warnings`)
  t.ok(perSecond < 16 * 5 + 60, `script calls during the refusal: ${Math.round(perSecond)}/s`)
  t.ok(warnings >= 1 && warnings <= 2, `the repeated failure is logged once per interval (${warnings} warnings)`)

  await expectExactlyOnce(t, s, ids, 20_000)
  for (const id of ids.slice(0, 5)) t.match(await getCheckout(s.store, id), { outcome: 'handled', attempts: 1 })
})
