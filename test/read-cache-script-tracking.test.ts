import t from 'tap'
import { startRedis } from './helpers/redis.js'
import { until } from './helpers/worker.js'

/**
 * Why the read cache does not cache key format 3 reads (docs/read-cache.md):
 * on Redis 7.0 CLIENT TRACKING remembers the keys a script declares in KEYS
 * and the keys read inside MULTI, but not a key the script reads by a name it
 * built itself, as packed-get-2.lua reads a hold's bucket. A write to the
 * bucket would send no invalidation.
 */
const redis = await startRedis()
t.teardown(redis.stop)

t.test('tracking covers the declared keys of a script and MULTI reads, not keys a script reads by a name it built', async (t) => {
  const reader = redis.client()
  const invalidations = redis.client()
  const writer = redis.client()
  const p = `tr${process.pid}:`
  const got: string[] = []
  const id = String(await invalidations.client('ID'))
  await invalidations.subscribe('__redis__:invalidate')
  invalidations.on('messageBuffer', (_channel: Buffer, message: Buffer | Buffer[] | null) => {
    if (Array.isArray(message)) for (const key of message) got.push(key.toString())
  })
  await reader.client('TRACKING', 'ON', 'REDIRECT', id)
  await writer.hset(`${p}declared`, 'f', '1')
  await writer.hset(`${p}undeclared`, 'f', '1')
  await writer.hset(`${p}multi`, 'f', '1')
  const sha = String(await writer.script('LOAD', "redis.call('HGET', KEYS[1], 'f'); return redis.call('HGET', ARGV[1], 'f')"))
  await reader.multi().evalsha(sha, 1, `${p}declared`, `${p}undeclared`).hmget(`${p}multi`, 'f').exec()
  await writer.hset(`${p}declared`, 'f', '2')
  await writer.hset(`${p}undeclared`, 'f', '2')
  await writer.hset(`${p}multi`, 'f', '2')
  await writer.hset(`${p}unread`, 'f', '2')
  t.ok(await until(() => got.length >= 2, 3000), 'two invalidations')
  // Time for a third, if Redis sent one.
  await new Promise((resolve) => setTimeout(resolve, 200))
  t.same(got.sort(), [`${p}declared`, `${p}multi`], 'the declared key and the key read in MULTI; not the key the script read by name')
  await writer.del(`${p}declared`, `${p}undeclared`, `${p}multi`, `${p}unread`)
  for (const c of [reader, invalidations, writer]) c.disconnect()
})
