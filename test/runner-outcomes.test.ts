import t, { type Test } from 'tap'
import { closeRedis } from '../src/redis/connection.js'
import { getCheckout } from '../src/store/checkout-store.js'
import type { StoreContext } from '../src/store/context.js'
import { testConfig } from './helpers/app.js'
import { startRedis } from './helpers/redis.js'
import { expiredJob, testRunner } from './helpers/runner.js'
import { testStore, until } from './helpers/worker.js'

/**
 * What the runner records for a run: success only when every handler
 * returned or resolved; any throw or rejection is a failed run, whatever
 * value it carries, and its message reaches the public GET bounded and
 * without a URL's credentials.
 */
const redis = await startRedis()
t.teardown(redis.stop)

function freshStore (t: Test): StoreContext {
  const store = testStore(testConfig(redis.url))
  t.teardown(() => closeRedis(store.redis))
  return store
}

const thrown: Array<[string, () => unknown]> = [
  ['throw undefined', () => { throw undefined }],
  ['Promise.reject()', async () => await Promise.reject()],
  ['reject(null)', async () => await Promise.reject(null)],
  ['throw 0', () => { throw 0 }],
  ['throw an empty string', () => { throw '' }],
  ['throw false', () => { throw false }],
  ['a value String() cannot convert', () => { throw Object.create(null) }],
  ['reject with a value String() cannot convert', async () => await Promise.reject(Object.create(null))]
]

t.test('a handler that throws or rejects, whatever the value, is a failed run and is retried', async (t) => {
  const store = freshStore(t)
  for (const [name, fail] of thrown) {
    const id = `fails-${name.replace(/\W+/g, '-')}`
    const runner = testRunner(store, { handlers: [{ name: 'failing', handle: fail as () => void }] })
    runner.start(await expiredJob(store, id), 'sweep')
    t.ok(await until(async () => (await getCheckout(store, id)).outcome !== 'pending', 3000), `${name}: an outcome is recorded`)
    const view = await getCheckout(store, id)
    t.equal(view.outcome, 'retrying', `${name}: retried, not handled`)
    t.equal(view.attempts, 1, `${name}: one attempt`)
    t.type(view.lastError, 'string', `${name}: a last error`)
    t.equal(runner.stats.handled, 0, `${name}: not counted as handled`)
  }
})

t.test('a handler that returns or resolves any value is a handled run', async (t) => {
  const store = freshStore(t)
  const returns: Array<[string, () => unknown]> = [
    ['returns undefined', () => undefined],
    ['resolves undefined', async () => {}],
    ['resolves an Error object', async () => await Promise.resolve(new Error('a value, not a failure'))]
  ]
  for (const [name, handle] of returns) {
    const id = `ok-${name.replace(/\W+/g, '-')}`
    const runner = testRunner(store, { handlers: [{ name: 'ok', handle: handle as () => void }] })
    runner.start(await expiredJob(store, id), 'sweep')
    t.ok(await until(async () => (await getCheckout(store, id)).outcome === 'handled', 3000), `${name}: handled`)
  }
})

t.test('lastError keeps the handler message, at most 500 characters, without the userinfo of any URL in it', async (t) => {
  const store = freshStore(t)
  const cases: Array<[string, unknown, (e: string) => void]> = [
    ['credentials', new Error('fetch failed: POST https://shop:s3cr%40t@hooks.example.com/expired and http://token@b.example/x'), (e) => {
      t.equal(e, 'fetch failed: POST https://hooks.example.com/expired and http://b.example/x')
    }],
    ['a long message', new Error('x'.repeat(5000)), (e) => {
      t.ok(e.length <= 500, `cut to ${e.length} characters`)
      t.ok(e.startsWith('x'.repeat(400)), 'the start of the message is kept')
    }],
    ['a plain string', 'card service said no', (e) => t.equal(e, 'card service said no')]
  ]
  for (const [name, error, check] of cases) {
    const id = `msg-${name.replace(/\W+/g, '-')}`
    const runner = testRunner(store, { handlers: [{ name: 'failing', handle: async () => { throw error } }] })
    runner.start(await expiredJob(store, id), 'sweep')
    t.ok(await until(async () => (await getCheckout(store, id)).outcome === 'retrying', 3000), `${name}: retrying`)
    check((await getCheckout(store, id)).lastError ?? '')
  }
})
