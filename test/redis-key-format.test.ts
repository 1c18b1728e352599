import { pino } from 'pino'
import t from 'tap'
import { buildApp } from '../src/app.js'
import { loadConfig } from '../src/config.js'
import { startExpiryWorker } from '../src/expiry/worker.js'
import { createRedis } from '../src/redis/connection.js'
import { json, testApp, testConfig } from './helpers/app.js'
import { spawnRedis } from './helpers/replica.js'
import { recorder, until } from './helpers/worker.js'

/**
 * The API opens its keyspace from the layout recorded in Redis: a prefix a
 * worker recorded with key format 2 (cluster-balanced shard tags) is written
 * in format 2 by the API too, so the worker finds and runs its holds.
 */
t.test('a prefix recorded with format 2: the API writes format 2 and the worker runs its expiry', async (t) => {
  const node = await spawnRedis(t, [])
  const url = `redis://127.0.0.1:${node.port}/0`
  const config = testConfig(url)
  const { calls, handler } = recorder()
  const worker = await startExpiryWorker({
    config,
    redis: createRedis({ url, role: 'worker' }),
    subscriber: createRedis({ url, role: 'subscriber' }),
    keyFormat: 2,
    handlers: [handler],
    log: pino({ level: 'silent' })
  })
  t.teardown(() => worker.close(2000))
  const { app } = await testApp(url, { KEY_PREFIX: config.KEY_PREFIX })
  t.teardown(() => app.close())

  t.equal(app.store.keys.format, 2, 'the API follows the recorded format')
  t.equal((await app.inject({ method: 'POST', url: '/checkout', ...json({ id: 'fmt-2', ttlMs: 1000 }) })).statusCode, 201)
  t.ok(await until(() => calls.some((c) => c.id === 'fmt-2'), 8000), 'the worker found the hold and ran its expiry')
})

t.test('KEY_FORMAT=2 records a new prefix in format 2; a recorded format wins over KEY_FORMAT', async (t) => {
  const node = await spawnRedis(t, [])
  const url = `redis://127.0.0.1:${node.port}/0`
  const { app, config } = await testApp(url, { KEY_FORMAT: '2' })
  t.teardown(() => app.close())
  t.equal(app.store.keys.format, 2)
  const recorded = JSON.parse(await app.redis.get(`${config.KEY_PREFIX}layout`) ?? '{}') as { version?: number }
  t.equal(recorded.version, 2, 'recorded as format 2')
  t.equal((await app.inject({ method: 'POST', url: '/checkout', ...json({ id: 'fmt-new', ttlMs: 60_000 }) })).statusCode, 201)
  t.match(app.store.keys.order('fmt-new').order, /\{\d+\.\d+\}:order:fmt-new$/, 'a format-2 hash tag')

  const { app: older } = await testApp(url, { KEY_PREFIX: config.KEY_PREFIX, KEY_FORMAT: '1' })
  t.teardown(() => older.close())
  t.equal(older.store.keys.format, 2, 'KEY_FORMAT=1 on a prefix recorded in format 2 follows the record')
  t.equal((await older.inject('/checkout/fmt-new')).statusCode, 200)
})

t.test('the default records a new prefix in format 3; a prefix recorded in format 1 keeps format 1', async (t) => {
  const node = await spawnRedis(t, [])
  const url = `redis://127.0.0.1:${node.port}/0`
  // loadConfig directly: testConfig would let TEST_KEY_FORMAT stand in for the default.
  const config = loadConfig({ REDIS_URL: url, KEY_PREFIX: testConfig(url).KEY_PREFIX, LOG_LEVEL: 'silent' })
  t.equal(config.KEY_FORMAT, 3, 'KEY_FORMAT defaults to 3')
  const app = await buildApp({ config })
  t.teardown(() => app.close())
  await app.ready()
  t.equal(app.store.keys.format, 3)
  const recorded = JSON.parse(await app.redis.get(`${config.KEY_PREFIX}layout`) ?? '{}') as { version?: number }
  t.equal(recorded.version, 3, 'recorded as format 3')

  const { app: first, config: old } = await testApp(url, { KEY_FORMAT: '1' })
  t.teardown(() => first.close())
  t.equal((await first.inject({ method: 'POST', url: '/checkout', ...json({ id: 'fmt-old', ttlMs: 60_000 }) })).statusCode, 201)
  const later = await buildApp({ config: loadConfig({ REDIS_URL: url, KEY_PREFIX: old.KEY_PREFIX, LOG_LEVEL: 'silent' }) })
  t.teardown(() => later.close())
  await later.ready()
  t.equal(later.store.keys.format, 1, 'a process with the default follows the format 1 record')
  t.equal((await later.inject('/checkout/fmt-old')).statusCode, 200, 'and reads the hold written in format 1')
})
