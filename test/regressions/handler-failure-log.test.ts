import t from 'tap'
import type { NamedHandler } from '../../src/expiry/handlers.js'
import { closeRedis } from '../../src/redis/connection.js'
import { testConfig } from '../helpers/app.js'
import { startRedis } from '../helpers/redis.js'
import { expiredJob, testRunner } from '../helpers/runner.js'
import { capturingLogger, testStore, until } from '../helpers/worker.js'

/**
 * The log line of a failed run names the handler that failed, as the
 * failure metric does: with several handlers, the error alone does not say
 * which one threw.
 */
const redis = await startRedis()
t.teardown(redis.stop)

const handlers: NamedHandler[] = [
  { name: 'first', handle: () => {} },
  { name: 'flaky', handle: () => { throw new Error('downstream is down') } }
]

for (const [maxAttempts, msg] of [
  [2, 'expiry handler failed; will retry'],
  [1, 'expiry handler failed for the last time: order moved to the dead-letter set']
] as const) {
  t.test(`"${msg}" names the handler`, async (t) => {
    const store = testStore(testConfig(redis.url))
    t.teardown(() => closeRedis(store.redis))
    const { log, lines } = capturingLogger()
    const runner = testRunner(store, { handlers, maxAttempts, log })
    runner.start(await expiredJob(store, `fails-${maxAttempts}`), 'sweep')
    t.ok(await until(() => lines.some((l) => l.msg === msg), 5000), 'the failure is logged')
    t.match(lines.find((l) => l.msg === msg), { handler: 'flaky', orderId: `fails-${maxAttempts}`, err: { message: 'downstream is down' } })
  })
}
