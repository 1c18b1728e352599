import t from 'tap'
import { json, testApp } from './helpers/app.js'
import { spawnRedis } from './helpers/replica.js'
import { recorder, testWorker, until } from './helpers/worker.js'

/**
 * A promoted replica, a restarted node or an operator's SCRIPT FLUSH leaves
 * Redis without our scripts. Every script call must load it again by itself
 * (NOSCRIPT, then EVAL): no client may ever see that it happened.
 */
t.test('SCRIPT FLUSH again and again under load: every request answers as usual and every expiry runs once', async (t) => {
  const node = await spawnRedis(t, [])
  const url = `redis://127.0.0.1:${node.port}/0`
  const { app, config } = await testApp(url)
  t.teardown(() => app.close())
  const { calls, handler } = recorder()
  const worker = await testWorker(config, [handler])
  t.teardown(() => worker.close(2000))

  const admin = node.client()
  let flushes = 0
  let loading = true
  const flusher = (async () => {
    while (loading) {
      await admin.script('FLUSH')
      flushes++
      await new Promise((resolve) => setTimeout(resolve, 5))
    }
  })()

  const unexpected: string[] = []
  const expiring: string[] = []
  let requests = 0
  const expect = async (method: 'GET' | 'POST', url: string, status: number, body?: unknown) => {
    const res = await app.inject({ method, url, ...(body === undefined ? {} : json(body)) })
    requests++
    if (res.statusCode !== status) unexpected.push(`${method} ${url}: ${res.statusCode} ${res.body}`)
  }
  const client = async (n: number) => {
    for (let i = 0; loading; i++) {
      const id = `flush-${n}-${i}`
      const expires = i % 4 === 0
      await expect('POST', '/checkout', 201, { id, ttlMs: expires ? 1000 : 60_000 })
      await expect('GET', `/checkout/${id}`, 200)
      if (expires) expiring.push(id)
      else await expect('POST', `/checkout/${id}/complete`, 200)
    }
  }
  const load = Promise.all([0, 1, 2, 3, 4, 5].map(client))
  await new Promise((resolve) => setTimeout(resolve, 2500))
  loading = false
  await Promise.all([load, flusher])

  t.ok(flushes > 100, `${flushes} flushes during ${requests} requests`)
  t.same(unexpected, [], 'no request saw the flush')
  const handledOnce = () => expiring.every((id) => calls.filter((c) => c.id === id).length === 1)
  t.ok(await until(handledOnce, 8000), `all ${expiring.length} expiries ran, under the flushes too`)
  t.equal(calls.length, expiring.length, 'each exactly once')
})
