import { join } from 'node:path'
import t from 'tap'
import { testConfig } from './helpers/app.js'
import { RECORD_HANDLER, readRecords, startApi, startWorker } from './helpers/processes.js'
import { startRedis } from './helpers/redis.js'
import { tempDir } from './helpers/temp.js'
import { until } from './helpers/worker.js'

t.test('API and worker processes: a 1 s hold expires and the handler runs once with its payload', async (t) => {
  const redis = await startRedis()
  t.teardown(redis.stop)
  const record = join(tempDir(t, 'e2e'), 'calls.jsonl')
  const env = {
    REDIS_URL: redis.url,
    KEY_PREFIX: testConfig(redis.url).KEY_PREFIX,
    EXPIRY_HANDLERS: `log,${RECORD_HANDLER}`,
    RECORD_FILE: record
  }
  const api = await startApi(env)
  t.teardown(() => api.signal('SIGTERM'))
  const worker = await startWorker(env)
  t.teardown(() => worker.signal('SIGTERM'))

  const post = await fetch(`${api.base}/checkout`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ id: 'e2e-1', ttlMs: 1000, payload: { cart: ['sku-1'], total: 42 } })
  })
  t.equal(post.status, 201)
  const created = await post.json() as { expiresAt: string }

  t.ok(await until(() => readRecords(record).length >= 1, 5000), 'handler called')
  await new Promise((resolve) => setTimeout(resolve, 500))
  const calls = readRecords(record)
  t.equal(calls.length, 1, 'once')
  t.match(calls[0], { id: 'e2e-1', payload: { cart: ['sku-1'], total: 42 }, attempt: 1, idempotencyKey: /^e2e-1:[0-9a-f]{16}:1$/, deadline: created.expiresAt })
  t.match(worker.output(), /order expired/, 'the built-in log handler logged it')

  const after = await fetch(`${api.base}/checkout/e2e-1`)
  t.match(await after.json(), { status: 'expired', outcome: 'handled' })
  const again = await fetch(`${api.base}/checkout`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ id: 'e2e-1', expire: 20 })
  })
  t.equal(again.status, 201, 'the same id can be held again')
})
