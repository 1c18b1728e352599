import { join } from 'node:path'
import t, { type Test } from 'tap'
import { closeRedis } from '../src/redis/connection.js'
import { createHold } from '../src/store/checkout-store.js'
import { testConfig } from './helpers/app.js'
import { RECORD_HANDLER, readRecords, startApi, startChild, startWorker, waitForOutput } from './helpers/processes.js'
import { startRedis } from './helpers/redis.js'
import { tempDir } from './helpers/temp.js'
import { testStore } from './helpers/worker.js'

const redis = await startRedis()
t.teardown(redis.stop)
const baseEnv = () => ({ REDIS_URL: redis.url, KEY_PREFIX: testConfig(redis.url).KEY_PREFIX })
const recordFile = (t: Test) => join(tempDir(t, 'shutdown'), 'calls.jsonl')

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  t.test(`API: ${signal} closes the server and exits 0 promptly`, async (t) => {
    const api = await startApi(baseEnv())
    const { code, ms } = await api.signal(signal)
    t.equal(code, 0)
    t.ok(ms < 3000, `exited in ${ms} ms`)
    t.match(api.output(), /shutting down/)
  })
}

/** A worker whose recording handler is running (it sleeps for RECORD_SLEEP_MS); the hold is written through the store. */
async function workerWithRunningHandler (t: Test, id: string, env: Record<string, string>) {
  const full = { ...baseEnv(), EXPIRY_HANDLERS: RECORD_HANDLER, LOG_LEVEL: 'debug', ...env }
  const worker = await startWorker(full)
  const store = testStore(testConfig(redis.url, { KEY_PREFIX: full.KEY_PREFIX }))
  t.teardown(() => closeRedis(store.redis))
  await createHold(store, { id, ttlMs: 1000 })
  await waitForOutput(worker, 'running expiry handlers', 5000)
  return worker
}

t.test('worker: SIGTERM lets a running handler finish, then exits 0', async (t) => {
  const record = recordFile(t)
  const worker = await workerWithRunningHandler(t, 'sd-1', { RECORD_FILE: record, RECORD_SLEEP_MS: '1500' })
  const { code, ms } = await worker.signal('SIGTERM')
  t.equal(code, 0)
  t.ok(ms >= 1000 && ms < 5000, `waited for the handler (${ms} ms)`)
  t.match(readRecords(record), [{ id: 'sd-1', ok: true }], 'the handler finished')
  t.match(worker.output(), /expiry worker stopped/)
})

t.test('worker: a handler past the shutdown deadline is abandoned, the process still exits', async (t) => {
  const worker = await workerWithRunningHandler(t, 'sd-2', { RECORD_FILE: recordFile(t), RECORD_SLEEP_MS: '20000', SHUTDOWN_TIMEOUT_MS: '500' })
  const { code, ms } = await worker.signal('SIGTERM')
  t.equal(code, 0)
  t.ok(ms < 3000, `bounded by the deadline (${ms} ms)`)
  t.match(worker.output(), /handlers still running at the shutdown deadline/)
})

t.test('worker: a second signal exits at once', async (t) => {
  const worker = await workerWithRunningHandler(t, 'sd-3', { RECORD_FILE: recordFile(t), RECORD_SLEEP_MS: '20000' })
  const started = Date.now()
  worker.proc.kill('SIGTERM')
  await waitForOutput(worker, 'shutting down', 3000)
  worker.proc.kill('SIGTERM')
  const { code } = await worker.exited
  t.equal(code, 1)
  t.ok(Date.now() - started < 3000, 'did not wait for the handler')
})

t.test('a bad config stops the process with one line naming the variable', async (t) => {
  for (const entry of ['src/server.ts', 'workers/expiry-worker.ts'] as const) {
    const child = startChild(entry, { ...baseEnv(), CHECKOUT_MAX_TTL_MS: 'lots' })
    const { code } = await child.exited
    t.equal(code, 1, entry)
    t.equal(child.output().trim(), 'checkout-expiry: Invalid CHECKOUT_MAX_TTL_MS="lots": expected an integer from 1000 to 2147483647')
  }
  const worker = startChild('workers/expiry-worker.ts', { ...baseEnv(), EXPIRY_HANDLERS: 'nope' })
  t.equal((await worker.exited).code, 1)
  t.match(worker.output(), /EXPIRY_HANDLERS: unknown handler "nope"/)
})
