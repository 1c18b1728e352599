import { join } from 'node:path'
import { Value } from '@sinclair/typebox/value'
import t from 'tap'
import { LifecycleEvent, parseEventEntry } from '../src/events/schema.js'
import { testConfig } from './helpers/app.js'
import { RECORD_HANDLER, startApi, startWorker } from './helpers/processes.js'
import { startRedis } from './helpers/redis.js'
import { tempDir } from './helpers/temp.js'

/**
 * The event stream as a user runs it: the API and a worker with
 * EVENT_STREAM=true (and the stream handler, as earlier releases needed); a consumer group reads every
 * lifecycle event of completed, cancelled, extended, expired and dead holds.
 */
const redis = await startRedis()
t.teardown(redis.stop)

t.test('API + worker with EVENT_STREAM: a consumer group reads every lifecycle event once', async (t) => {
  const { KEY_PREFIX } = testConfig(redis.url)
  const env = {
    REDIS_URL: redis.url, KEY_PREFIX, EVENT_STREAM: 'true',
    EXPIRY_HANDLERS: `stream,${RECORD_HANDLER}`, RECORD_FILE: join(tempDir(t, 'events'), 'calls.jsonl'),
    RECORD_FAIL_IDS: 'e-dead:always', EXPIRY_MAX_ATTEMPTS: '2', EXPIRY_BACKOFF_MS: '50'
  }
  const api = await startApi(env)
  t.teardown(() => api.signal('SIGTERM'))
  const worker = await startWorker(env)
  t.teardown(() => worker.signal('SIGTERM'))

  const call = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${api.base}${path}`, {
      method, ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
    })
    if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`)
  }
  await call('POST', '/checkout', { id: 'e-done', ttlMs: 60_000, payload: { email: 'jane@example.com' } })
  await call('PATCH', '/checkout/e-done', { ttlMs: 120_000 })
  await call('POST', '/checkout/e-done/complete')
  await call('POST', '/checkout', { id: 'e-cancel', ttlMs: 60_000 })
  await call('DELETE', '/checkout/e-cancel')
  await call('POST', '/checkout', { id: 'e-exp', ttlMs: 1000 })
  await call('POST', '/checkout', { id: 'e-dead', ttlMs: 1000 })

  const conn = redis.client()
  const key = `${KEY_PREFIX}events`
  await conn.xgroup('CREATE', key, 'billing', '0', 'MKSTREAM')
  const events: LifecycleEvent[] = []
  const deadline = Date.now() + 20_000
  // Each shard's outbox is relayed on its own: e-exp's expired event may come after e-dead's dead.
  const done = () => events.some((e) => e.type === 'dead') && events.some((e) => e.orderId === 'e-exp' && e.type === 'expired')
  while (Date.now() < deadline && !done()) {
    const reply = await conn.xreadgroup('GROUP', 'billing', 'b-1', 'COUNT', 100, 'BLOCK', 500, 'STREAMS', key, '>') as
      Array<[string, Array<[string, string[]]>]> | null
    for (const [id, fields] of reply?.[0]?.[1] ?? []) {
      events.push(parseEventEntry(fields))
      await conn.xack(key, 'billing', id)
    }
  }
  const seen = (id: string) => events.filter((e) => e.orderId === id).map((e) => e.type)
  t.same(seen('e-done'), ['created', 'extended', 'completed'])
  t.same(seen('e-cancel'), ['created', 'cancelled'])
  t.same(seen('e-exp'), ['created', 'expired'])
  t.same(seen('e-dead'), ['created', 'expired', 'dead'], 'expired once, however often its handlers ran, then dead after the last attempt')
  t.ok(events.every((e) => Value.Check(LifecycleEvent, e)), 'every event matches the schema')
  t.equal(new Set(events.map((e) => e.eventId)).size, events.length, 'no eventId twice')
  t.match(events.find((e) => e.orderId === 'e-exp' && e.type === 'expired'), { eventId: new RegExp(`^e-exp:[0-9a-f]{16}:\\d+:expired$`) },
    'an expired event\'s eventId is <idempotencyKey>:expired')
  t.notMatch(JSON.stringify(events), /jane@example\.com/, 'no payload contents in the stream')
  const created = events.find((e) => e.type === 'created' && e.orderId === 'e-done')
  t.match(created, { v: 1, generation: Number, payloadBytes: JSON.stringify({ email: 'jane@example.com' }).length })
})
