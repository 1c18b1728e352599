import t from 'tap'
import { testApp, testConfig } from '../helpers/app.js'
import { startRedis } from '../helpers/redis.js'
import { recorder, testWorker } from '../helpers/worker.js'

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
