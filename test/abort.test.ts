import t from 'tap'
import { closeRedis } from '../src/redis/connection.js'
import { createHold, getCheckout } from '../src/store/checkout-store.js'
import type { ExpiryEvent } from '../src/expiry/handlers.js'
import { testConfig } from './helpers/app.js'
import { startRedis } from './helpers/redis.js'
import { testStore, testWorker, until } from './helpers/worker.js'

/**
 * A handler's AbortSignal: aborted when the worker cannot renew its
 * heartbeat in time (measured on its own monotonic clock), and when the
 * handler runs past EXPIRY_HANDLER_TIMEOUT_MS; in both cases the run is not
 * left running beside the next one.
 */
const redis = await startRedis()
t.teardown(redis.stop)

/** A handler that waits until its signal aborts (or `untilMs`), then takes `lingerMs` to stop, noting why and when. */
function abortable (untilMs: number, lingerMs = 0) {
  const runs: Array<{ attempt: number, startedAt: number, endedAt?: number, reason?: string }> = []
  return {
    runs,
    handler: {
      name: 'abortable',
      handle: async (event: ExpiryEvent, ctx: { signal: AbortSignal }) => {
        const run: (typeof runs)[number] = { attempt: event.attempt, startedAt: Date.now() }
        runs.push(run)
        if (runs.length > 1) { run.endedAt = Date.now(); return }
        await new Promise<void>((resolve, reject) => {
          const timer = setTimeout(resolve, untilMs)
          ctx.signal.addEventListener('abort', () => {
            clearTimeout(timer)
            run.reason = (ctx.signal.reason as Error).message
            setTimeout(() => {
              run.endedAt = Date.now()
              reject(ctx.signal.reason)
            }, lingerMs)
          }, { once: true })
        })
        run.endedAt = Date.now()
      }
    }
  }
}

t.test('a worker that cannot renew its heartbeat in time aborts its handlers, gives the run back uncounted, and runs it again', async (t) => {
  const config = testConfig(redis.url, { EXPIRY_LEASE_MS: '1000', EXPIRY_HEARTBEAT_MS: '100' })
  const store = testStore(config)
  t.teardown(() => closeRedis(store.redis))
  const { runs, handler } = abortable(20_000)
  const worker = await testWorker(config, [handler])
  t.teardown(() => worker.close())
  await createHold(store, { id: 'cut-off', ttlMs: 1000 })
  t.ok(await until(() => runs.length === 1, 3000), 'the handler runs')

  // Writes (heartbeats among them) hang for 2.5 s: the worker can no longer prove its claim.
  const admin = redis.client()
  const pausedAt = Date.now()
  await admin.call('CLIENT', 'PAUSE', '2500', 'WRITE')
  t.ok(await until(() => runs[0]!.endedAt !== undefined, 3000), 'aborted')
  // Its process kept beating on time: Redis did not answer, so the attempt is not the handler's doing.
  t.match(runs[0]!.reason, /Redis did not confirm the heartbeat within 900 ms/)
  const abortedAfter = runs[0]!.endedAt! - pausedAt
  t.ok(abortedAfter < 2500, `aborted ${abortedAfter} ms after the heartbeats stopped (lease 1000 ms), before Redis answered again`)

  t.ok(await until(async () => (await getCheckout(store, 'cut-off')).outcome === 'handled', 8000), 'handled in the end')
  t.same(runs.map((r) => r.attempt), [1, 1], 'run again once, as attempt 1: the aborted attempt was given back')
  t.equal(worker.runner.stats.abandoned, 1)
  t.equal(worker.runner.stats.handled, 1)
})

t.test('a handler past EXPIRY_HANDLER_TIMEOUT_MS is aborted, and its retry starts only after it stopped', async (t) => {
  const config = testConfig(redis.url, { EXPIRY_HANDLER_TIMEOUT_MS: '300', EXPIRY_BACKOFF_MS: '1' })
  const store = testStore(config)
  t.teardown(() => closeRedis(store.redis))
  // It takes 400 ms to notice the abort: the retry must not start beside it.
  const { runs, handler } = abortable(20_000, 400)
  const worker = await testWorker(config, [handler])
  t.teardown(() => worker.close())
  await createHold(store, { id: 'slow', ttlMs: 1000 })
  t.ok(await until(async () => (await getCheckout(store, 'slow')).outcome === 'handled', 6000), 'handled on the retry')
  t.equal(runs.length, 2)
  t.match(runs[0], { attempt: 1, reason: 'handler timed out after 300 ms' })
  t.ok(runs[1]!.startedAt >= runs[0]!.endedAt!, 'the retry started after the first run had stopped')
  t.match(await getCheckout(store, 'slow'), { attempts: 2, lastError: 'handler timed out after 300 ms' })
})
