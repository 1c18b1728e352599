import t from 'tap'
import { json, testApp } from '../helpers/app.js'
import { startRedis } from '../helpers/redis.js'

/** `.` and `..` are path segments, not ids: a hold under them could never be read, completed or cancelled by URL. */
const redis = await startRedis()
t.teardown(redis.stop)
const { app } = await testApp(redis.url)
t.teardown(() => app.close())

t.test('ids "." and ".." are refused; ids with dots are fine', async (t) => {
  for (const id of ['.', '..']) {
    const res = await app.inject({ method: 'POST', url: '/checkout', ...json({ id, ttlMs: 60_000 }) })
    t.equal(res.statusCode, 400, JSON.stringify(id))
    t.equal(res.json().code, 'VALIDATION_FAILED')
  }
  for (const id of ['...', '.a', 'a..b', 'v1.2']) {
    t.equal((await app.inject({ method: 'POST', url: '/checkout', ...json({ id, ttlMs: 60_000 }) })).statusCode, 201, id)
    t.equal((await app.inject({ method: 'GET', url: `/checkout/${id}` })).statusCode, 200, `${id} reads back by URL`)
  }
})
