import t from 'tap'
import { buildApp } from '../../src/app.js'
import { ConfigError } from '../../src/config.js'
import { json, testConfig } from '../helpers/app.js'
import { startChild } from '../helpers/processes.js'
import { startRedis } from '../helpers/redis.js'

/**
 * A REDIS_URL database the server cannot select (out of range, or refused by
 * an ACL) must never fall back to database 0: ioredis logs the failed SELECT
 * and carries on there.
 */
const redis = await startRedis({ extraArgs: ['--databases', '4'] })
t.teardown(redis.stop)
const admin = redis.client()
t.teardown(() => admin.quit())
const dbUrl = (db: number) => redis.url.replace(/(\/\d+)?$/, `/${db}`)

t.test('a database the server does not have: the API refuses to start, naming the database', async (t) => {
  const err = await buildApp({ config: testConfig(dbUrl(9)) }).then(async (app) => { await app.close() }, (e: unknown) => e)
  t.type(err, ConfigError)
  t.match((err as Error).message, /select database 9.*REDIS_URL/)
  t.equal(await admin.dbsize(), 0, 'nothing was written to database 0')
})

t.test('the worker process stops with one line naming the database', async (t) => {
  const worker = startChild('workers/expiry-worker.ts', { REDIS_URL: dbUrl(9), KEY_PREFIX: 'seldb:' })
  const { code } = await worker.exited
  t.equal(code, 1)
  t.match(worker.output(), /select database 9/)
  t.notMatch(worker.output(), /expiry worker ready/)
  t.equal(await admin.dbsize(), 0, 'nothing was written to database 0')
})

t.test('a reconnection whose SELECT fails writes nothing to database 0: requests answer 503', async (t) => {
  const app = await buildApp({ config: testConfig(dbUrl(2)) })
  t.teardown(() => app.close())
  t.equal((await app.inject({ method: 'POST', url: '/checkout', ...json({ id: 'before', ttlMs: 60_000 }) })).statusCode, 201)
  await admin.call('ACL', 'SETUSER', 'default', '-select')
  t.teardown(async () => { await admin.call('ACL', 'SETUSER', 'default', '+select') })
  await admin.call('CLIENT', 'KILL', 'TYPE', 'normal', 'SKIPME', 'yes')
  await new Promise((resolve) => setTimeout(resolve, 500))
  const res = await app.inject({ method: 'POST', url: '/checkout', ...json({ id: 'after', ttlMs: 60_000 }) })
  t.equal(res.statusCode, 503)
  t.equal(await admin.dbsize(), 0, 'nothing was written to database 0')
})
