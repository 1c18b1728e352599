import { join } from 'node:path'
import autocannon from 'autocannon'
import t from 'tap'
import { json, testApp, testConfig } from './helpers/app.js'
import { RECORD_HANDLER, readRecords, startApi, startWorker, successCounts } from './helpers/processes.js'
import { startRedis } from './helpers/redis.js'
import { tempDir } from './helpers/temp.js'

/**
 * Zero-downtime restarts: an API that gets SIGTERM under load answers every
 * request it accepted, with no 5xx, and exits within its deadline; a worker
 * restarted while holds expire loses none and runs none twice.
 */
const redis = await startRedis()
t.teardown(redis.stop)

t.test('API: SIGTERM under load: every accepted request is answered, no 5xx, a prompt exit', async (t) => {
  const config = testConfig(redis.url)
  const api = await startApi({ REDIS_URL: redis.url, KEY_PREFIX: config.KEY_PREFIX, SHUTDOWN_TIMEOUT_MS: '5000' })
  const sent = new Set<string>()
  const answered = new Map<string, number>()
  let seq = 0
  const run = autocannon({
    url: api.base,
    connections: 16,
    duration: 4,
    requests: [{
      method: 'POST',
      path: '/checkout',
      headers: { 'content-type': 'application/json' },
      setupRequest: (req, context: { id?: string }) => {
        context.id = `rr-${seq++}`
        sent.add(context.id)
        return { ...req, body: JSON.stringify({ id: context.id, ttlMs: 60_000 }) }
      },
      onResponse: (status, _body, context: { id?: string }) => { if (context.id) answered.set(context.id, status) }
    }]
  })
  await new Promise((resolve) => setTimeout(resolve, 1500))
  const before = answered.size
  const { code, ms } = await api.signal('SIGTERM')
  const result = await run

  t.equal(code, 0, 'exit code 0')
  t.ok(ms < 5000, `exited within the deadline (${ms} ms)`)
  t.ok(before > 100, `load ran before the signal (${before} answered)`)
  const statuses = [...answered.values()]
  t.same(statuses.filter((s) => s !== 201), [], 'every answered request was a 201: no 5xx, no 503 while closing')
  t.equal(result.non2xx, 0)

  // Accepted = stored. A request that got no answer must not have been stored.
  const unanswered = [...sent].filter((id) => !answered.has(id))
  const { app } = await testApp(redis.url, { KEY_PREFIX: config.KEY_PREFIX })
  t.teardown(() => app.close())
  const storedUnanswered = []
  for (const id of unanswered) if ((await app.inject({ url: `/checkout/${id}` })).statusCode !== 404) storedUnanswered.push(id)
  t.same(storedUnanswered, [], `none of the ${unanswered.length} unanswered requests was stored`)
  const sample = [...answered.keys()].slice(-20)
  for (const id of sample) t.equal((await app.inject({ url: `/checkout/${id}` })).statusCode, 200, `${id} answered 201 and is held`)
})

t.test('worker: restarted while holds expire, every expiry runs exactly once', async (t) => {
  const config = testConfig(redis.url)
  const record = join(tempDir(t, 'rolling'), 'calls.jsonl')
  const env = {
    REDIS_URL: redis.url, KEY_PREFIX: config.KEY_PREFIX, EXPIRY_HANDLERS: RECORD_HANDLER, RECORD_FILE: record,
    RECORD_SLEEP_MS: '150', SHUTDOWN_TIMEOUT_MS: '5000'
  }
  const { app } = await testApp(redis.url, { KEY_PREFIX: config.KEY_PREFIX })
  t.teardown(() => app.close())
  const [first, other] = await Promise.all([startWorker(env), startWorker(env)])
  t.teardown(() => { other.proc.kill('SIGKILL') })

  const ids = Array.from({ length: 300 }, (_v, i) => `roll-${i}`)
  await Promise.all(ids.map(async (id, i) => {
    const res = await app.inject({ method: 'POST', url: '/checkout', ...json({ id, ttlMs: 1000 + (i % 30) * 100 }) })
    if (res.statusCode !== 201) throw new Error(`${id}: ${res.statusCode}`)
  }))
  // The first deadlines pass; the restart lands in the middle of the window.
  await new Promise((resolve) => setTimeout(resolve, 2000))
  const stoppedAt = Date.now()
  const stopping = first.signal('SIGTERM')
  const replacement = await startWorker(env)
  t.teardown(() => { replacement.proc.kill('SIGKILL') })
  const { code, ms } = await stopping
  t.equal(code, 0)
  t.ok(ms < 5000, `the old worker exited within its deadline (${ms} ms)`)

  const deadline = Date.now() + 20_000
  while (successCounts(record).size < ids.length && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100))
  const counts = successCounts(record)
  t.equal(counts.size, ids.length, 'every expiry ran')
  t.same([...counts].filter(([, n]) => n !== 1), [], 'none twice')
  const runs = readRecords(record)
  t.ok(runs.some((r) => r.startedAt < stoppedAt) && runs.some((r) => r.startedAt > stoppedAt + 500),
    'the restart fell inside the expiry window')
  t.ok(runs.some((r) => r.pid === first.proc.pid), 'the stopped worker had run some')
})
