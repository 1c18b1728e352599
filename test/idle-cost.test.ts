import t from 'tap'
import { closeRedis, createRedis } from '../src/redis/connection.js'
import { testConfig } from './helpers/app.js'
import { startRedis } from './helpers/redis.js'
import { recorder, testWorker } from './helpers/worker.js'

/**
 * An idle fleet costs Redis next to nothing, whatever KEY_SHARDS is: each
 * worker sends one heartbeat per interval (not one per shard), and nothing
 * polls (docs/delivery.md, "Shard ownership"). Counted from INFO
 * commandstats over 10 s, commands run inside scripts included: at most 10
 * commands and 2 script calls a second per worker (each heartbeat runs 2
 * commands in its script; the dashboard state and the layout record are
 * one command a second each).
 */
const redis = await startRedis()
t.teardown(redis.stop)

const commandStats = async (conn: ReturnType<typeof createRedis>) => {
  const out = new Map<string, number>()
  for (const m of String(await conn.info('commandstats')).matchAll(/^cmdstat_(\S+?):calls=(\d+)/gm)) out.set(m[1] as string, Number(m[2]))
  return out
}

t.test('3 idle workers, 64 shards: at most 10 commands and 2 script calls a second each', async (t) => {
  const config = testConfig(redis.url, { KEY_SHARDS: '64' })
  const workers = await Promise.all(Array.from({ length: 3 }, async () => await testWorker(config, [recorder().handler])))
  t.teardown(async () => { await Promise.all(workers.map(async (w) => await w.close(2000))) })
  const probe = createRedis({ url: redis.url, role: 'api' })
  t.teardown(() => closeRedis(probe))
  // Joined, shards shared out, start-up writes done.
  await new Promise((resolve) => setTimeout(resolve, 3000))
  const before = await commandStats(probe)
  const seconds = 10
  await new Promise((resolve) => setTimeout(resolve, seconds * 1000))
  const after = await commandStats(probe)
  const delta = (name: string) => (after.get(name) ?? 0) - (before.get(name) ?? 0)
  const names = [...after.keys()].filter((n) => n !== 'info' && delta(n) > 0)
  const commands = names.reduce((sum, n) => sum + delta(n), 0)
  const scripts = ['evalsha', 'eval', 'evalsha_ro', 'eval_ro', 'fcall'].reduce((sum, n) => sum + delta(n), 0)
  t.comment(names.map((n) => `${n} ${delta(n)}`).join(', '))
  const perWorker = (n: number) => n / seconds / workers.length
  t.ok(perWorker(commands) <= 10, `${perWorker(commands).toFixed(1)} commands/s per worker`)
  t.ok(perWorker(scripts) <= 2, `${perWorker(scripts).toFixed(1)} script calls/s per worker`)
})
