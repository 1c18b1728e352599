import { randomBytes } from 'node:crypto'
import t from 'tap'
import { buildApp } from '../../src/app.js'
import { closeRedis } from '../../src/redis/connection.js'
import { openKeyspace } from '../../src/store/layout.js'
import { json, testConfig } from '../helpers/app.js'
import { startRedis } from '../helpers/redis.js'

/**
 * Opening the key layout reads first and writes only when there is no
 * record: a full Redis, a replica or a read-only user can still open an
 * existing layout; a process that could not open it keeps trying.
 */
const redis = await startRedis()
t.teardown(redis.stop)
const admin = redis.client()
t.teardown(() => admin.quit())
const silent = { warn: () => {} }
const prefix = () => `lr${randomBytes(3).toString('hex')}:`

t.test('an existing layout opens for a read-only user: nothing is written', async (t) => {
  const p = prefix()
  await openKeyspace(admin, p, 16, silent)
  await admin.call('ACL', 'SETUSER', 'reader', 'on', '>reader-pw', '~*', '+@all', '-@write', '-@scripting', '+eval', '+evalsha', '+script|load')
  const reader = redis.client()
  await reader.call('AUTH', 'reader', 'reader-pw')
  t.teardown(() => closeRedis(reader))
  const keys = await openKeyspace(reader, p, 16, silent)
  t.equal(keys.prefix, p)
})

t.test('two processes opening a new prefix with different key formats at once agree on the recorded one', async (t) => {
  const p = prefix()
  const a = redis.client()
  const b = redis.client()
  t.teardown(async () => { await Promise.all([closeRedis(a), closeRedis(b)]) })
  const [ka, kb] = await Promise.all([openKeyspace(a, p, 16, silent, 1), openKeyspace(b, p, 16, silent, 2)])
  t.equal(ka.format, kb.format, 'the loser takes the recorded format')
  t.equal(ka.epoch, kb.epoch)
})

t.test('Redis full: the API still starts on an existing layout; on a new prefix it answers 503 and opens it once Redis takes writes', async (t) => {
  const existing = testConfig(redis.url)
  const first = await buildApp({ config: existing })
  t.equal((await first.inject({ method: 'POST', url: '/checkout', ...json({ id: 'kept', ttlMs: 60_000 }) })).statusCode, 201)
  await first.close()

  await admin.config('SET', 'maxmemory-policy', 'noeviction')
  await admin.config('SET', 'maxmemory', '1')
  t.teardown(async () => { await admin.config('SET', 'maxmemory', '0') })

  const again = await buildApp({ config: existing })
  t.teardown(() => again.close())
  t.equal((await again.inject('/checkout/kept')).statusCode, 200, 'reads an existing layout and serves reads while Redis is full')

  const fresh = await buildApp({ config: testConfig(redis.url) })
  t.teardown(() => fresh.close())
  const during = await fresh.inject({ method: 'POST', url: '/checkout', ...json({ id: 'new', ttlMs: 60_000 }) })
  t.equal(during.statusCode, 503, 'a new prefix cannot be recorded while Redis is full: 503, not a crash')

  await admin.config('SET', 'maxmemory', '0')
  const deadline = Date.now() + 10_000
  let status = 0
  while (Date.now() < deadline) {
    status = (await fresh.inject({ method: 'POST', url: '/checkout', ...json({ id: 'new', ttlMs: 60_000 }) })).statusCode
    if (status === 201) break
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
  t.equal(status, 201, 'the layout is recorded once Redis takes writes, without a reconnection')
})
