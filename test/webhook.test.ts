import { createHmac } from 'node:crypto'
import type { AddressInfo } from 'node:net'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { pino } from 'pino'
import t, { type Test } from 'tap'
import { loadHandlers, type ExpiryEvent, type ExpiryHandler } from '../src/expiry/handlers.js'
import { webhookHandler } from '../src/expiry/handlers/webhook.js'
import { closeRedis } from '../src/redis/connection.js'
import { createHold, getCheckout } from '../src/store/checkout-store.js'
import { openKeyspace } from '../src/store/layout.js'
import { signWebhook, verifyWebhookSignature } from '../src/webhook-signature.js'
import { testConfig } from './helpers/app.js'
import { freePort, startRedis } from './helpers/redis.js'
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

/** The v1 signature of `bytes` at `t`, computed here without the module under test. */
const v1Of = (secret: string, t: number, bytes: Uint8Array) =>
  createHmac('sha256', secret).update(Buffer.concat([Buffer.from(`${t}.`), bytes])).digest('hex')

t.test('verifyWebhookSignature: a non-finite or negative tolerance (or clock) is refused, never a pass', async (t) => {
  const body = '{"id":"o-old"}'
  const now = 1_800_000_000_000
  const tenYearsAgo = signWebhook(body, SECRET, now - 10 * 365 * 86_400_000)
  for (const tolerance of [Number.NaN, Number.POSITIVE_INFINITY, -1, -Number.EPSILON]) {
    t.throws(() => verifyWebhookSignature(body, tenYearsAgo, SECRET, tolerance, now), RangeError, `tolerance ${tolerance}`)
  }
  t.throws(() => verifyWebhookSignature(body, tenYearsAgo, SECRET, 300, Number.NaN), RangeError, 'now NaN')
  t.equal(verifyWebhookSignature(body, tenYearsAgo, SECRET, 300, now), false, 'the default tolerance refuses it')
  t.equal(verifyWebhookSignature(body, signWebhook(body, SECRET, now), SECRET, 0, now), true, 'tolerance 0: the same second')
})

t.test('verifyWebhookSignature: every v1= is checked, a match in any of several passes', async (t) => {
  const body = '{"id":"o-2"}'
  const now = 1_800_000_000_000
  const ts = now / 1000
  const good = v1Of(SECRET, ts, Buffer.from(body))
  const other = v1Of('whsec_other', ts, Buffer.from(body))
  t.equal(verifyWebhookSignature(body, `t=${ts},v1=${good},v1=${other}`, SECRET, 300, now), true, 'match in the first of two')
  t.equal(verifyWebhookSignature(body, `t=${ts},v1=${other},v1=${other},v1=${good}`, SECRET, 300, now), true, 'match in the last of three')
  t.equal(verifyWebhookSignature(body, `t=${ts},v1=${good},v1=short,v0=${other}`, SECRET, 300, now), true, 'malformed and unknown entries are skipped')
  t.equal(verifyWebhookSignature(body, `t=${ts},v1=${other},v1=${other}`, SECRET, 300, now), false, 'no match')
  t.equal(verifyWebhookSignature(body, `t=${ts},t=${ts + 1},v1=${good}`, SECRET, 300, now), false, 'two timestamps: ambiguous')
})

t.test('verifyWebhookSignature: the HMAC is over the raw bytes (non-UTF-8, BOM, Uint8Array), a string is its UTF-8', async (t) => {
  const now = 1_800_000_000_000
  const ts = now / 1000
  const bodies = {
    'invalid UTF-8': Buffer.from([0x7b, 0xff, 0xfe, 0x80, 0xc3, 0x7d]),
    'a lone surrogate half': Buffer.from([0x7b, 0xed, 0xa0, 0x80, 0x7d]),
    'a UTF-8 BOM': Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"id":"o-bom"}')]),
    'Latin-1 text': Buffer.from('{"name":"Zoë"}', 'latin1')
  }
  for (const [name, bytes] of Object.entries(bodies)) {
    const header = `t=${ts},v1=${v1Of(SECRET, ts, bytes)}`
    t.equal(verifyWebhookSignature(bytes, header, SECRET, 300, now), true, `${name}: the Buffer verifies`)
    t.equal(verifyWebhookSignature(new Uint8Array(bytes), header, SECRET, 300, now), true, `${name}: a plain Uint8Array verifies`)
    t.equal(signWebhook(bytes, SECRET, now), header, `${name}: signWebhook signs the bytes`)
  }
  const bom = bodies['a UTF-8 BOM']
  t.equal(verifyWebhookSignature(bom.subarray(3), `t=${ts},v1=${v1Of(SECRET, ts, bom)}`, SECRET, 300, now), false, 'the BOM is part of the signed bytes')
  const invalid = bodies['invalid UTF-8']
  t.equal(verifyWebhookSignature(invalid.toString('utf8'), `t=${ts},v1=${v1Of(SECRET, ts, invalid)}`, SECRET, 300, now), false,
    'decoded text is not the bytes that were signed')
  const text = '{"name":"Zoë ✓"}'
  t.equal(verifyWebhookSignature(text, `t=${ts},v1=${v1Of(SECRET, ts, Buffer.from(text, 'utf8'))}`, SECRET, 300, now), true, 'a string: its UTF-8')
})

t.test('secret rotation: one v1= per secret, any secret of the verifier may match', async (t) => {
  const body = '{"id":"o-rot"}'
  const now = 1_800_000_000_000
  const both = signWebhook(body, 'whsec_old,whsec_new', now)
  t.match(both, /^t=1800000000,v1=[0-9a-f]{64},v1=[0-9a-f]{64}$/)
  t.equal(signWebhook(body, ['whsec_old', 'whsec_new'], now), both, 'a list or a comma-separated string')
  for (const secrets of ['whsec_old', 'whsec_new', 'whsec_old,whsec_new', ['whsec_x', 'whsec_new']]) {
    t.equal(verifyWebhookSignature(body, both, secrets, 300, now), true, `verified with ${String(secrets)}`)
  }
  t.equal(verifyWebhookSignature(body, both, 'whsec_x', 300, now), false, 'another secret')
  t.equal(verifyWebhookSignature(body, both, [], 300, now), false, 'no secret')
  t.equal(verifyWebhookSignature(body, both, ',', 300, now), false, 'only empty entries')
  t.equal(verifyWebhookSignature(body, signWebhook(body, 'whsec_old', now), ['whsec_old', 'whsec_new'], 300, now), true,
    'a receiver that already knows both accepts the old signature')
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
    const chunks: Buffer[] = []
    req.on('data', (d: Buffer) => chunks.push(d))
    req.on('end', () => {
      const raw = Buffer.concat(chunks)
      r.calls.push({
        verified: verifyWebhookSignature(raw, req.headers['checkout-signature'] as string | undefined, SECRET),
        idempotencyKey: req.headers['idempotency-key'] as string | undefined,
        body: JSON.parse(raw.toString('utf8')) as Record<string, unknown>
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

const silentCtx = () => ({ log: pino({ level: 'silent' }), signal: new AbortController().signal })
const expiryEvent = (id: string): ExpiryEvent => ({
  id, payload: { note: 'Zoë ✓' }, deadline: new Date().toISOString(), expiredAt: new Date().toISOString(), attempt: 1, generation: 1, idempotencyKey: `${id}:1`
})

/** A receiver that keeps the raw bytes and answers 400 unless the signature verifies with its current secrets. */
async function strictReceiver (t: Test, secrets: string) {
  const r = { url: '', secrets, headers: [] as string[], refused: 0 }
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = []
    req.on('data', (d: Buffer) => chunks.push(d))
    req.on('end', () => {
      const header = req.headers['checkout-signature'] as string | undefined
      r.headers.push(header ?? '')
      const ok = verifyWebhookSignature(Buffer.concat(chunks), header, r.secrets)
      if (!ok) r.refused++
      res.writeHead(ok ? 204 : 400).end()
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  r.url = `http://127.0.0.1:${(server.address() as { port: number }).port}/expired`
  t.teardown(async () => { server.closeAllConnections(); await new Promise((resolve) => server.close(resolve)) })
  return r
}

t.test('a secret rotation end to end: the real webhook handler against receivers, in the documented order', async (t) => {
  const r = await strictReceiver(t, 'whsec_old')
  const handler = async (secret: string): Promise<ExpiryHandler> =>
    (await loadHandlers('webhook', { webhook: { url: r.url, secret, timeoutMs: 2000 } }))[0]!.handle
  const deliver = async (h: ExpiryHandler, id: string) => { await h(expiryEvent(id), silentCtx()) }

  await deliver(await handler('whsec_old'), 'rot-0')
  t.equal(r.refused, 0, 'before: one secret on both sides')

  // 1. The worker signs with both; receivers that know only the old secret keep verifying.
  const both = await handler('whsec_old,whsec_new')
  await deliver(both, 'rot-1')
  t.match(r.headers.at(-1), /^t=\d+,v1=[0-9a-f]{64},v1=[0-9a-f]{64}$/, 'one v1= per secret')
  // 2. Receivers move to the new secret (or to both), while the worker still signs with both.
  r.secrets = 'whsec_new'
  await deliver(both, 'rot-2')
  r.secrets = 'whsec_old,whsec_new'
  await deliver(both, 'rot-2b')
  t.equal(r.refused, 0, 'no delivery refused during the rotation')

  // 3. The worker drops the old secret.
  r.secrets = 'whsec_new'
  const fresh = await handler('whsec_new')
  await deliver(fresh, 'rot-3')
  t.match(r.headers.at(-1), /^t=\d+,v1=[0-9a-f]{64}$/, 'one secret, one v1=')
  t.equal(r.refused, 0)
  r.secrets = 'whsec_old'
  await t.rejects(deliver(fresh, 'rot-4'), /answered 400/, 'a receiver still on the old secret now refuses: why step 2 comes before step 3')
})

t.test("the webhook handler's errors never carry the URL's credentials or query", async (t) => {
  const r = await strictReceiver(t, SECRET)
  const { port } = new URL(r.url)
  const run = async (url: string) => {
    const h = webhookHandler({ url, secret: SECRET, timeoutMs: 1000 })
    await h(expiryEvent('leak-1'), silentCtx())
  }
  for (const url of [`http://hook-user:pw-Zq9@127.0.0.1:${port}/expired`, `http://tok-Zq9@127.0.0.1:${port}/expired`]) {
    const err = await run(url).then(() => undefined, (e: unknown) => e as Error)
    t.ok(err, `${url.replace(/\/\/.*@/, '//…@')}: refused`)
    t.notMatch(`${err?.message} ${JSON.stringify(err)}`, /Zq9/, 'no credentials in the error')
  }
  t.same(r.headers, [], 'nothing was sent')
  const closed = await freePort()
  const err = await run(`http://127.0.0.1:${closed}/expired?token=qs-Zq9`).then(() => undefined, (e: unknown) => e as Error)
  t.match(err?.message, new RegExp(`^webhook 127\\.0\\.0\\.1:${closed}: `), 'names the host')
  t.notMatch(`${err?.message} ${JSON.stringify(err)}`, /Zq9/, 'no query in the error')
})

t.test('a dead webhook expiry records no URL query in lastError', async (t) => {
  const closed = await freePort()
  const config = testConfig(redis.url, { EXPIRY_MAX_ATTEMPTS: '1' })
  const store = testStore(config)
  t.teardown(() => closeRedis(store.redis))
  const handlers = await loadHandlers('webhook', { webhook: { url: `http://127.0.0.1:${closed}/x?token=qs-Zq9`, secret: SECRET, timeoutMs: 1000 } })
  const worker = await testWorker(config, handlers)
  t.teardown(() => worker.close(500))
  await createHold(store, { id: 'wh-query', ttlMs: 1000 })
  t.ok(await until(async () => (await getCheckout(store, 'wh-query')).outcome === 'dead', 6000), 'dead after one attempt')
  const hold = await getCheckout(store, 'wh-query')
  t.match(hold.lastError, /^webhook 127\.0\.0\.1:\d+: /)
  t.notMatch(hold.lastError, /Zq9/)
})

t.test('a receiver answering with a huge body: the handler reads a few KB and returns, never the whole body', async (t) => {
  const TOTAL = 200 * 1024 * 1024
  const chunk = Buffer.alloc(64 * 1024, 0x61)
  let sent = 0
  const server = createServer((req, res) => {
    req.resume()
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': TOTAL })
    // Writes as fast as the client reads (backpressure), stopping at TOTAL or when the client hangs up.
    const pump = () => {
      while (sent < TOTAL && !res.destroyed) {
        sent += chunk.length
        if (!res.write(chunk)) return void res.once('drain', pump)
      }
      if (!res.destroyed) res.end()
    }
    res.on('close', () => { res.destroy() })
    pump()
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()) }))
  const { port } = server.address() as AddressInfo
  const h = webhookHandler({ url: `http://127.0.0.1:${port}/expired`, secret: SECRET, timeoutMs: 20_000 })
  await h(expiryEvent('big-body'), silentCtx())
  t.ok(sent < 32 * 1024 * 1024, `the receiver got to send ${Math.round(sent / 1024 / 1024)} MB of ${TOTAL / 1024 / 1024} MB before the handler let go`)
})
