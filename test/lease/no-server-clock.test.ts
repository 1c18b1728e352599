import { readFileSync } from 'node:fs'
import t from 'tap'
import { closeRedis } from '../../src/redis/connection.js'
import { beatMembership } from '../../src/store/membership.js'
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
 * monotonic clock; and the Lua that renews, reaps and hands out shards has
 * no TIME in it.
 */
const redis = await startRedis()
t.teardown(redis.stop)
const config = testConfig(redis.url, { KEY_SHARDS: '1' })
const store = testStore(config)
t.teardown(() => closeRedis(store.redis))

t.test('Redis never reaps a worker by time: only a request naming its unchanged beat number does', async (t) => {
  await beatMembership(store, 'quiet')
  await new Promise((resolve) => setTimeout(resolve, 300))
  for (let i = 0; i < 3; i++) await beatMembership(store, 'busy')
  const beat = await beatMembership(store, 'busy')
  const quiet = beat.live.find((w) => w.token === 'quiet')
  t.ok(quiet, 'a worker silent for a while is still registered: no server clock decided it lapsed')
  const reaped = await beatMembership(store, 'busy', [quiet!])
  t.notOk(reaped.live.some((w) => w.token === 'quiet'), 'reaped at once when a worker asks with the number it saw')
  t.ok(reaped.gone.includes('quiet'))
})

t.test('the Lua that renews workers, reaps them and hands out shards reads no clock', async (t) => {
  for (const file of ['includes/members.lua', 'members-beat-1.lua', 'members-leave-1.lua', 'own-3.lua']) {
    const lua = readFileSync(new URL(`../../src/store/scripts/${file}`, import.meta.url), 'utf8')
    t.notMatch(lua.replace(/--\[\[[\s\S]*?\]\]/, ''), /TIME|nowMs/, `${file} reads no clock`)
  }
  // own-3.lua includes the release of gone workers' jobs: those are due at the server time, not a lease.
})
