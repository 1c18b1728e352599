import t from 'tap'
import { buildApp } from '../src/app.js'
import type { ExpiryEvent } from '../src/expiry/handlers.js'
import { startMigration } from '../src/store/migration.js'
import { json, testConfig } from './helpers/app.js'
import { startRedis } from './helpers/redis.js'
import { testWorker, until } from './helpers/worker.js'

/**
 * A create, while migrating to format 3, of an id whose old-layout hold is
 * past its deadline but not expired yet (no worker has claimed it). In one
 * layout the create script expires the old hold and queues its handler in
 * the same step; across two layouts no script can, so the create is refused
 * (409, no time left) until a worker has expired the old hold, whose
 * handler then runs once, and the create goes through.
 */
const redis = await startRedis()
t.teardown(redis.stop)
const sleep = async (ms: number) => await new Promise((resolve) => setTimeout(resolve, ms))

for (const from of ['1', '2']) {
  t.test(`from format ${from}: a lapsed old hold is expired and handled before its id is held again`, async (t) => {
    const config = testConfig(redis.url, { KEY_FORMAT: from, KEY_SHARDS: '2', EXPIRY_POLL_MS: '200' })
    const app = await buildApp({ config })
    await app.ready()
    t.teardown(() => app.close())
    const create = async () => await app.inject({ method: 'POST', url: '/checkout', ...json({ id: 'lapsed', ttlMs: 1000 }) })
    t.equal((await create()).statusCode, 201, 'held in the old layout')
    await startMigration(redis.client(), config.KEY_PREFIX, 2, { warn: () => {} }, () => {})
    t.ok(await until(() => app.store.keys.migration?.writes === 'new', 5000), 'the API follows the switch')
    await sleep(200) // past its deadline (the switch takes 3 s); no worker runs yet

    const refused = await create()
    t.equal(refused.statusCode, 409, 'refused while the old hold awaits its expiry')
    t.equal(refused.json().ttlMs, 0, 'with no time left')

    const calls: ExpiryEvent[] = []
    const worker = await testWorker(config, [{ name: 'recorder', handle: (e) => { calls.push(e) } }])
    t.teardown(() => worker.close(2000))
    t.ok(await until(() => calls.length === 1, 10_000), 'the old hold expires and its handler runs')
    t.equal((await create()).statusCode, 201, 'then the id is held again, in format 3')
    await sleep(1000)
    t.equal(calls.filter((c) => c.idempotencyKey === calls[0]?.idempotencyKey).length, 1, "the old hold's handler ran once")
  })
}
