import t from 'tap'
import { json, testApp, testConfig } from '../helpers/app.js'
import { startRedis } from '../helpers/redis.js'
import { createKeyspace } from '../../src/keys.js'
import { ensureLayout, LayoutMismatchError, newPrefixWarning } from '../../src/store/layout.js'
import { startChild } from '../helpers/processes.js'
import { recorder, testWorker, until } from '../helpers/worker.js'

/**
 * An API and a worker that disagree on KEY_SHARDS would write and read
 * different keys: every expiry lost without a word. The second to start
 * must refuse, naming the variable and the value the data was written with.
 */
const redis = await startRedis()
t.teardown(redis.stop)

t.test('a worker with other KEY_SHARDS than the data refuses to start', async (t) => {
  const { app, config } = await testApp(redis.url, { KEY_SHARDS: '32' })
  t.teardown(() => app.close())
  const workerConfig = { ...config, KEY_SHARDS: 16 }
  await t.rejects(testWorker(workerConfig, [recorder().handler]), /KEY_SHARDS=16.*written with KEY_SHARDS=32/)
})

t.test('an API with other KEY_SHARDS than the data refuses to start', async (t) => {
  const config = testConfig(redis.url, { KEY_SHARDS: '8' })
  const worker = await testWorker(config, [recorder().handler])
  t.teardown(() => worker.close())
  await t.rejects(testApp(redis.url, { KEY_PREFIX: config.KEY_PREFIX, KEY_SHARDS: '4' }), /KEY_SHARDS=4.*written with KEY_SHARDS=8/)
})

t.test('the processes stop with one line naming KEY_SHARDS', async (t) => {
  const { app, config } = await testApp(redis.url, { KEY_SHARDS: '16' })
  t.teardown(() => app.close())
  for (const entry of ['src/server.ts', 'workers/expiry-worker.ts'] as const) {
    const child = startChild(entry, { REDIS_URL: redis.url, KEY_PREFIX: config.KEY_PREFIX, KEY_SHARDS: '32' })
    const { code } = await child.exited
    t.equal(code, 1, entry)
    const lines = child.output().trim().split('\n')
    t.match(lines.at(-1), /^checkout-expiry: KEY_SHARDS=32, but the data under KEY_PREFIX=\S+ was written with KEY_SHARDS=16 /)
    // Before it at most start-up lines at info (the worker's port) and the Redis fitness report
    // (the test Redis keeps no snapshot: a true warning about Redis, not about the layout);
    // no other warning or error to mislead.
    const louder = lines.slice(0, -1).filter((l) => !/"level":(10|20|30),/.test(l) && !/"msg":"redis fitness: /.test(l))
    t.same(louder, [], `${entry}: the one line that says why`)
  }
})

t.test('a new KEY_PREFIX beside others is recorded and warned about', async (t) => {
  const client = redis.client()
  const first = await ensureLayout(client, createKeyspace('warn-a:', 16))
  t.equal(first.created, true)
  const second = await ensureLayout(client, createKeyspace('warn-b:', 16))
  t.match(newPrefixWarning(second), /KEY_PREFIX=warn-b: is new on this Redis, which holds data under .*warn-a:/)
  const again = await ensureLayout(client, createKeyspace('warn-b:', 16))
  t.equal(newPrefixWarning(again), undefined, 'said once, at the first start')
  t.match(JSON.parse(await client.get('warn-a:layout') ?? '{}'), { version: 1, prefix: 'warn-a:', shards: 16 })
})

t.test('an API started while Redis is down checks the layout once Redis answers, and refuses on a mismatch', async (t) => {
  const down = await startRedis({ restartable: true, appendonly: true })
  t.teardown(down.stop)
  const config = testConfig(down.url, { KEY_SHARDS: '16', REDIS_COMMAND_TIMEOUT_MS: '500' })
  await ensureLayout(down.client(), createKeyspace(config.KEY_PREFIX, 16))
  await down.kill()
  const { app } = await testApp(down.url, { KEY_PREFIX: config.KEY_PREFIX, KEY_SHARDS: '8', REDIS_COMMAND_TIMEOUT_MS: '500' })
  t.teardown(() => app.close())
  await down.start()
  // Until Redis answers the API refuses with 503; then the layout check finds the mismatch.
  t.ok(await until(() => app.store.refusal instanceof LayoutMismatchError, 10_000), 'the mismatch is found after the reconnect')
  const res = await app.inject({ method: 'POST', url: '/checkout', ...json({ id: 'refused', ttlMs: 60_000 }) })
  t.equal(res.statusCode, 500)
  t.same(res.json(), { statusCode: 500, code: 'INTERNAL', error: 'Internal Server Error', message: 'Internal server error' }, 'no internals')
  t.equal((await app.inject('/readyz')).statusCode, 500, 'not ready')
  t.equal(await down.client().exists(`${config.KEY_PREFIX}{${createKeyspace('x', 8).shardOf('refused')}}:order:refused`), 0, 'nothing written')
})
