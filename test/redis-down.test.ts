import t from 'tap'
import { json, testApp } from './helpers/app.js'
import { startRedis } from './helpers/redis.js'

const redis = await startRedis({ restartable: true })
t.teardown(redis.stop)
const { app } = await testApp(redis.url, { REDIS_COMMAND_TIMEOUT_MS: '500' })
t.teardown(() => app.close())

t.test('Redis down: 503 REDIS_UNAVAILABLE quickly; back: the API recovers by itself', async (t) => {
  t.equal((await app.inject({ method: 'POST', url: '/checkout', ...json({ id: 'before', ttlMs: 60_000 }) })).statusCode, 201)
  await redis.kill()

  for (const req of [
    { method: 'GET' as const, url: '/checkout/before' },
    { method: 'POST' as const, url: '/checkout', ...json({ id: 'during', ttlMs: 60_000 }) },
    { method: 'GET' as const, url: '/readyz' }
  ]) {
    const started = Date.now()
    const res = await app.inject(req)
    const took = Date.now() - started
    t.equal(res.statusCode, 503, `${req.method} ${req.url}`)
    t.same(res.json(), {
      statusCode: 503, code: 'REDIS_UNAVAILABLE', error: 'Service Unavailable', message: 'Storage is unavailable; retry shortly'
    }, 'no internals in the body')
    t.ok(took < 1500, `answered in ${took} ms`)
  }
  t.same((await app.inject('/healthz')).json(), { status: 'ok' }, 'the process itself is alive')

  await redis.start()
  const deadline = Date.now() + 10_000
  let status = 0
  while (Date.now() < deadline) {
    status = (await app.inject('/readyz')).statusCode
    if (status === 200) break
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  t.equal(status, 200, 'ready again')
  const res = await app.inject({ method: 'POST', url: '/checkout', ...json({ id: 'after', ttlMs: 60_000 }) })
  t.equal(res.statusCode, 201, 'serving again')
})

t.test('Redis that accepts connections but does not answer: 503 after REDIS_COMMAND_TIMEOUT_MS, never a hang', async (t) => {
  const admin = redis.client()
  await admin.call('CLIENT', 'PAUSE', '3000', 'ALL')
  const started = Date.now()
  const res = await app.inject({ method: 'GET', url: '/checkout/paused' })
  const took = Date.now() - started
  await admin.call('CLIENT', 'UNPAUSE')
  t.equal(res.statusCode, 503)
  t.equal(res.json().code, 'REDIS_UNAVAILABLE')
  t.ok(took >= 400 && took < 1500, `bounded by the command timeout (${took} ms)`)
})
