import t from 'tap'
import { containerRuntimeAnswers, startRedis } from './helpers/redis.js'

t.test('the container backend loads on this Node version', async (t) => {
  const mod = await import('@testcontainers/redis')
  t.type(mod.RedisContainer, 'function')
})

t.test('finding out whether a container runtime answers takes milliseconds', async (t) => {
  const started = Date.now()
  const answers = await containerRuntimeAnswers()
  const took = Date.now() - started
  t.ok(took < 1000, `decided in ${took} ms (runtime ${answers ? 'found' : 'not found'})`)
})

t.test('each caller gets its own working Redis', async (t) => {
  const [a, b] = await Promise.all([startRedis(), startRedis()])
  t.teardown(async () => { await a.stop(); await b.stop() })
  t.not(a.port, b.port)
  t.not(a.port, 6379, 'never the shared default port')
  await a.client().set('k', 'a')
  t.equal(await b.client().get('k'), null, 'no shared state')
  t.equal(await a.client().get('k'), 'a')
})
