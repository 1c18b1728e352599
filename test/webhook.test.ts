import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import t, { type Test } from 'tap'
import { loadHandlers } from '../src/expiry/handlers.js'
import { closeRedis } from '../src/redis/connection.js'
import { createHold, getCheckout } from '../src/store/checkout-store.js'
import { openKeyspace } from '../src/store/layout.js'
import { signWebhook, verifyWebhookSignature } from '../src/webhook-signature.js'
import { testConfig } from './helpers/app.js'
import { startRedis } from './helpers/redis.js'
import { testStore, testWorker, until } from './helpers/worker.js'

const SECRET = 'whsec_test_1'

t.test('verifyWebhookSignature: the exact body, the secret, a fresh timestamp', async (t) => {
  const body = '{"id":"o-1","attempt":1}'
  const now = 1_800_000_000_000
  const header = signWebhook(body, SECRET, now)
  t.match(header, /^t=1800000000,v1=[0-9a-f]{64}$/)
  t.equal(verifyWebhookSignature(body, header, SECRET, 300, now), true)
  t.equal(verifyWebhookSignature(Buffer.from(body), header, SECRET, 300, now + 299_000), true, 'a Buffer, within the tolerance')
  t.equal(verifyWebhookSignature(body.replace('1}', '2}'), header, SECRET, 300, now), false, 'a changed body')
  t.equal(verifyWebhookSignature(body, header, 'other', 300, now), false, 'another secret')
  t.equal(verifyWebhookSignature(body, header, SECRET, 300, now + 301_000), false, 'too old')
  t.equal(verifyWebhookSignature(body, header, SECRET, 300, now - 301_000), false, 'from the future')
  for (const bad of [undefined, '', 'v1=abc', `t=x,v1=${'0'.repeat(64)}`, 't=1800000000,v1=short', header.replace('v1=', 'v0=')]) {
    t.equal(verifyWebhookSignature(body, bad, SECRET, 300, now), false, `malformed: ${String(bad).slice(0, 20)}`)
  }
})

t.test('EXPIRY_HANDLERS=webhook needs WEBHOOK_URL and WEBHOOK_SECRET', async (t) => {
  await t.rejects(loadHandlers('webhook'), /set WEBHOOK_URL and WEBHOOK_SECRET/)
})

interface Receiver {
  url: string
  calls: Array<{ verified: boolean, idempotencyKey: string | undefined, body: Record<string, unknown> }>
  connections: number
  /** What to answer to the next calls: a status, or 'hang'. */
  script: Array<number | 'hang'>
}

/** A local receiver that checks each signature the way a user's receiver would. */
async function receiver (t: Test): Promise<Receiver> {
  const r: Receiver = { url: '', calls: [], connections: 0, script: [] }
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let raw = ''
    req.on('data', (d: Buffer) => { raw += d.toString() })
    req.on('end', () => {
      r.calls.push({
        verified: verifyWebhookSignature(raw, req.headers['checkout-signature'] as string | undefined, SECRET),
        idempotencyKey: req.headers['idempotency-key'] as string | undefined,
        body: JSON.parse(raw) as Record<string, unknown>
      })
      const next = r.script.shift() ?? 200
      if (next === 'hang') return
      res.writeHead(next, next === 302 ? { location: 'http://127.0.0.1:9/elsewhere' } : {}).end()
    })
  })
  server.on('connection', () => { r.connections++ })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  r.url = `http://127.0.0.1:${(server.address() as { port: number }).port}/expired`
  t.teardown(async () => { server.closeAllConnections(); await new Promise((resolve) => server.close(resolve)) })
  return r
}

const redis = await startRedis()
t.teardown(redis.stop)

async function webhookWorker (t: Test, r: Receiver, env: Record<string, string> = {}) {
  const config = testConfig(redis.url, { EXPIRY_BACKOFF_MS: '20', ...env })
  const store = testStore(config)
  t.teardown(() => closeRedis(store.redis))
  const handlers = await loadHandlers('webhook', { webhook: { url: r.url, secret: SECRET, timeoutMs: Number(env.WEBHOOK_TIMEOUT_MS ?? 2000) } })
  const worker = await testWorker(config, handlers)
  t.teardown(() => worker.close(500))
  return { store, worker }
}

t.test('each expiry is POSTed signed, with its idempotency key; failures are retried until a 2xx', async (t) => {
  const r = await receiver(t)
  r.script = [500, 503]
  const { store } = await webhookWorker(t, r)
  const hold = await createHold(store, { id: 'wh-1', ttlMs: 1000, payload: { cart: ['sku-1'] } })
  t.ok(await until(async () => (await getCheckout(store, 'wh-1')).outcome === 'handled', 6000), 'handled')
  t.equal(r.calls.length, 3, 'two failures, then success')
  t.ok(r.calls.every((c) => c.verified), 'every signature verifies')
  const recorded = await openKeyspace(store.redis, store.keys.prefix, store.keys.shards, { warn: () => {} })
  const key = recorded.idempotencyKey('wh-1', hold.generation)
  t.same(r.calls.map((c) => c.idempotencyKey), Array(3).fill(key))
  t.match(r.calls[2]!.body, { id: 'wh-1', attempt: 3, payload: { cart: ['sku-1'] }, idempotencyKey: key })
  t.match(await getCheckout(store, 'wh-1'), { attempts: 3, lastError: /answered 503/ })
})

t.test('connections are reused across events', async (t) => {
  const r = await receiver(t)
  const { store } = await webhookWorker(t, r)
  for (let i = 0; i < 20; i++) await createHold(store, { id: `wh-many-${i}`, ttlMs: 1000 + i * 20 })
  t.ok(await until(() => r.calls.length === 20, 6000), '20 delivered')
  t.ok(r.connections < 20, `${r.connections} connections for 20 requests`)
})

t.test('a redirect is a failure, not followed; a receiver that does not answer in time is a failure', async (t) => {
  const r = await receiver(t)
  r.script = [302, 'hang']
  const { store } = await webhookWorker(t, r, { EXPIRY_MAX_ATTEMPTS: '1', WEBHOOK_TIMEOUT_MS: '300' })
  await createHold(store, { id: 'wh-redirect', ttlMs: 1000 })
  t.ok(await until(async () => (await getCheckout(store, 'wh-redirect')).outcome === 'dead', 4000), 'dead after one attempt')
  t.match(await getCheckout(store, 'wh-redirect'), { lastError: /answered 302/ })
  await createHold(store, { id: 'wh-hang', ttlMs: 1000 })
  t.ok(await until(async () => (await getCheckout(store, 'wh-hang')).outcome === 'dead', 4000), 'dead after the timeout')
  t.match(await getCheckout(store, 'wh-hang'), { lastError: /no answer within 300 ms/ })
  t.equal(r.calls.length, 2, 'the redirect target was never called')
})
