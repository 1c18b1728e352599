import { readFileSync } from 'node:fs'
import t from 'tap'
import { closeRedis } from '../../src/redis/connection.js'
import { heartbeat } from '../../src/store/expiry-jobs.js'
import { testConfig } from '../helpers/app.js'
import { startRedis } from '../helpers/redis.js'
import { testStore } from '../helpers/worker.js'

/**
 * Leases do not read Redis's clock, so a step of it (forwards: live workers
 * reaped; back: takeovers delayed) cannot move them. Stepping the clock of
 * a real redis-server would need the machine's clock changed; instead this
 * shows that no lapse decision reads TIME: Redis never reaps a worker by
 * itself, however long ago its last beat, only on a request naming the beat
 * number the requesting worker saw unchanged for a lease on its own
 * monotonic clock; and the Lua that renews and reaps has no TIME in it.
 */
const redis = await startRedis()
t.teardown(redis.stop)
const config = testConfig(redis.url, { KEY_SHARDS: '1' })
const store = testStore(config)
t.teardown(() => closeRedis(store.redis))

t.test('Redis never reaps a worker by time: only a request naming its unchanged beat number does', async (t) => {
  await heartbeat(store, 0, 'quiet')
  await new Promise((resolve) => setTimeout(resolve, 300))
  for (let i = 0; i < 3; i++) await heartbeat(store, 0, 'busy')
  const beat = await heartbeat(store, 0, 'busy')
  const quiet = beat.workers.find((w) => w.token === 'quiet')
  t.ok(quiet, 'a worker silent for a while is still registered: no server clock decided it lapsed')
  const reaped = await heartbeat(store, 0, 'busy', [quiet!])
  t.notOk(reaped.workers.some((w) => w.token === 'quiet'), 'reaped at once when a worker asks with the number it saw')
})

t.test('the Lua that renews workers and reaps them reads no clock', async (t) => {
  const lua = readFileSync(new URL('../../src/store/scripts/includes/workers.lua', import.meta.url), 'utf8')
  for (const name of ['beat', 'reapIfUnchanged']) {
    const body = new RegExp(`local function ${name}\\s*\\([^)]*\\)([\\s\\S]*?)\\nend\\n`).exec(lua)?.[1]
    t.ok(body, `${name} found`)
    t.notMatch(body ?? '', /TIME|nowMs/, `${name} reads no clock`)
  }
  const script = readFileSync(new URL('../../src/store/scripts/heartbeat-3.lua', import.meta.url), 'utf8')
  t.notMatch(script.replace(/--\[\[[\s\S]*?\]\]/, ''), /TIME|nowMs/, 'heartbeat-3.lua itself reads no clock (released jobs are due at the server time, not a lease)')
})
