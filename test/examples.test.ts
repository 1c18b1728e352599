import { spawn, spawnSync } from 'node:child_process'
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { pino } from 'pino'
import t, { type Test } from 'tap'
import ts from 'typescript'
import { loadHandlers } from '../src/expiry/handlers.js'
import { closeRedis } from '../src/redis/connection.js'
import { createHold, getCheckout } from '../src/store/checkout-store.js'
import { signWebhook } from '../src/webhook-signature.js'
import { testConfig } from './helpers/app.js'
import { childEnv, RECORD_HANDLER, readRecords, startApi, startWorker, type Child } from './helpers/processes.js'
import { startRedis } from './helpers/redis.js'
import { tempDir } from './helpers/temp.js'
import { testStore, testWorker, until } from './helpers/worker.js'

/**
 * Every program under examples/ runs here as a user runs it: the handler
 * module loaded from EXPIRY_HANDLERS by a real worker process, both webhook
 * receivers fed by the real webhook handler and by signWebhook, the stream
 * consumer reading what the real API and worker write.
 */
const root = fileURLToPath(new URL('../', import.meta.url))
const example = (path: string) => join(root, 'examples', path)
const redis = await startRedis()
t.teardown(redis.stop)

/** A program of ours (node or python3) with its output collected; killed when the test ends. */
function run (t: Test, command: string, args: string[], env: Record<string, string>, cwd = root): Child {
  const proc = spawn(command, args, { cwd, env: childEnv(env), stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  proc.stdout.on('data', (d: Buffer) => { out += d.toString() })
  proc.stderr.on('data', (d: Buffer) => { out += d.toString() })
  const exited = new Promise<{ code: number | null, signal: string | null }>((resolve) => {
    proc.once('exit', (code, signal) => resolve({ code, signal }))
  })
  const child: Child = {
    proc,
    output: () => out,
    exited,
    async signal (sig) {
      const started = Date.now()
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(sig)
      return { ...await exited, ms: Date.now() - started }
    }
  }
  t.teardown(() => child.signal('SIGKILL'))
  return child
}

async function outputMatches (t: Test, child: Child, pattern: RegExp, timeoutMs = 15_000): Promise<RegExpMatchArray | null> {
  await until(() => pattern.test(child.output()) || child.proc.exitCode !== null, timeoutMs, 25)
  const match = child.output().match(pattern)
  if (!match) t.fail(`no ${String(pattern)} in the output:\n${child.output()}`)
  return match
}

const call = async (base: string, method: string, path: string, body?: unknown) => {
  const res = await fetch(`${base}${path}`, {
    method, ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
  })
  if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`)
  return await res.json() as Record<string, unknown>
}

t.test('handler: the worker loads release-stock.mjs from EXPIRY_HANDLERS; a retried expiry releases stock once', async (t) => {
  const { KEY_PREFIX } = testConfig(redis.url)
  const records = join(tempDir(t, 'examples'), 'calls.jsonl')
  const env = {
    REDIS_URL: redis.url, KEY_PREFIX, EXPIRY_BACKOFF_MS: '50',
    // The recorder after it fails once for ex-retry: the retry runs release-stock again with the same key.
    EXPIRY_HANDLERS: `log,./examples/handler/release-stock.mjs,${RECORD_HANDLER}`, RECORD_FILE: records, RECORD_FAIL_IDS: 'ex-retry:1'
  }
  const api = await startApi(env)
  t.teardown(() => api.signal('SIGTERM'))
  const worker = await startWorker(env)
  t.teardown(() => worker.signal('SIGTERM'))

  await call(api.base, 'POST', '/checkout', { id: 'ex-retry', ttlMs: 1000, payload: { cart: [{ sku: 'sku-a', qty: 2 }, 'sku-b'] } })
  await call(api.base, 'POST', '/checkout', { id: 'ex-once', ttlMs: 1000, payload: { cart: ['sku-a'] } })
  const handled = async (id: string) => (await call(api.base, 'GET', `/checkout/${id}`)).outcome === 'handled'
  t.ok(await until(async () => await handled('ex-retry') && await handled('ex-once'), 15_000, 100), 'both handled')

  t.same(readRecords(records).filter((r) => r.id === 'ex-retry').map((r) => r.ok), [false, true], 'ex-retry ran twice')
  const conn = redis.client()
  t.same(await conn.hgetall('shop:{stock}:levels'), { 'sku-a': '3', 'sku-b': '1' }, 'each cart released exactly once')
  t.match(worker.output(), /stock already released for this expiry/, 'the retry found its key and released nothing')
})

/** The stand-in for `npm install checkout-expiry`: the package's export map and webhook-signature.js alone, nothing else. */
function installSignatureModule (dir: string): string[] {
  const source = readFileSync(join(root, 'src/webhook-signature.ts'), 'utf8')
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { exports: Record<string, { default: string }> }
  const entry = pkg.exports['./webhook-signature']
  if (!entry) throw new Error('package.json exports no ./webhook-signature')
  const target = join(dir, 'node_modules/checkout-expiry', entry.default)
  mkdirSync(join(target, '..'), { recursive: true })
  const { outputText } = ts.transpileModule(source, { compilerOptions: { module: ts.ModuleKind.ES2022, target: ts.ScriptTarget.ES2022 } })
  writeFileSync(target, outputText)
  writeFileSync(join(dir, 'node_modules/checkout-expiry/package.json'),
    JSON.stringify({ name: 'checkout-expiry', type: 'module', exports: { './webhook-signature': entry.default } }))
  return [...outputText.matchAll(/^import .* from '([^']+)'/gm)].map((m) => m[1] as string)
}

interface Receiver { url: string, child: Child }

async function receiverCases (t: Test, start: (t: Test, secrets: string) => Promise<Receiver>) {
  const config = testConfig(redis.url, { EXPIRY_BACKOFF_MS: '50' })
  const store = testStore(config)
  t.teardown(() => closeRedis(store.redis))
  // Step 2 of a rotation: the receiver knows both secrets; the worker signs with the new one only.
  const r = await start(t, 'whsec-old,whsec-new')
  const handlers = await loadHandlers('webhook', { webhook: { url: r.url, secret: 'whsec-new', timeoutMs: 5000 } })
  const worker = await testWorker(config, handlers)
  t.teardown(() => worker.close(500))

  await createHold(store, { id: 'wh-ex-1', ttlMs: 1000, payload: { cart: ['sku-1'] } })
  t.ok(await until(async () => (await getCheckout(store, 'wh-ex-1')).outcome === 'handled', 15_000, 50), 'the worker got a 2xx')
  const line = await outputMatches(t, r.child, /expired wh-ex-1 generation (\d+) \(key (\S+)\)/)
  t.ok(line, 'the receiver verified the real worker\'s request and handled the event')

  const post = async (body: string, header: string) => (await fetch(r.url, {
    method: 'POST', headers: { 'content-type': 'application/json', 'checkout-signature': header }, body
  })).status
  const body = JSON.stringify({ id: 'wh-ex-2', generation: 1, idempotencyKey: 'wh-ex-2:1:1', attempt: 1 })
  t.equal(await post(body, signWebhook(body, 'whsec-old')), 204, 'the old secret, during the rotation')
  t.equal(await post(body, signWebhook(body, 'whsec-old,whsec-new')), 204, 'the same event again (both signatures)')
  t.equal(await post(body, signWebhook(body, 'whsec-other')), 400, 'a secret it does not know')
  t.equal(await post(body.replace('"attempt":1', '"attempt":2'), signWebhook(body, 'whsec-new')), 400, 'a changed body')
  t.equal(await post(body, signWebhook(body, 'whsec-new', Date.now() - 301_000)), 400, 'older than the 5-minute tolerance')
  t.equal(await post(body, ''), 400, 'no signature')
  t.equal(r.child.output().match(/expired wh-ex-2 /g)?.length, 1, 'an event delivered twice is handled once')
}

t.test('webhook receiver (Node): verifies the real worker\'s signatures, two secrets during a rotation', async (t) => {
  await receiverCases(t, async (t, secrets) => {
    const dir = tempDir(t, 'receiver')
    t.same(installSignatureModule(dir), ['node:crypto'], 'webhook-signature needs nothing but node:crypto')
    copyFileSync(example('webhook-receiver/node/server.mjs'), join(dir, 'server.mjs'))
    const child = run(t, process.execPath, ['server.mjs'], { WEBHOOK_SECRET: secrets, PORT: '0' }, dir)
    const url = (await outputMatches(t, child, /listening on (\S+)/))?.[1] ?? ''
    return { url, child }
  })
})

const python = spawnSync('python3', ['--version']).status === 0
t.test('webhook receiver (Python): verifies the real worker\'s signatures, two secrets during a rotation',
  { skip: python ? false : 'python3 is not installed' }, async (t) => {
    await receiverCases(t, async (t, secrets) => {
      const child = run(t, 'python3', [example('webhook-receiver/python/receiver.py')], { WEBHOOK_SECRET: secrets, PORT: '0' })
      const url = (await outputMatches(t, child, /listening on (\S+)/))?.[1] ?? ''
      return { url, child }
    })
  })

t.test('docs/webhook-verification.md shows the Python check that the receiver runs', async (t) => {
  const doc = readFileSync(join(root, 'docs/webhook-verification.md'), 'utf8')
  const block = doc.match(/```python\n([\s\S]*?)```/)?.[1]
  t.equal(block, readFileSync(example('webhook-receiver/python/checkout_signature.py'), 'utf8'), 'the same code, character for character')
})

t.test('stream consumer: reads the lifecycle events the real API and worker write, once each', async (t) => {
  const { KEY_PREFIX } = testConfig(redis.url)
  const consumer = run(t, process.execPath, [example('stream-consumer/consumer.mjs')], { REDIS_URL: redis.url, KEY_PREFIX, GROUP: 'billing' })
  await outputMatches(t, consumer, /consuming/)
  const env = { REDIS_URL: redis.url, KEY_PREFIX, EVENT_STREAM: 'true', EXPIRY_HANDLERS: 'stream,log' }
  const api = await startApi(env)
  t.teardown(() => api.signal('SIGTERM'))
  const worker = await startWorker(env)
  t.teardown(() => worker.signal('SIGTERM'))

  await call(api.base, 'POST', '/checkout', { id: 'st-done', ttlMs: 60_000 })
  await call(api.base, 'POST', '/checkout/st-done/complete')
  await call(api.base, 'POST', '/checkout', { id: 'st-cancel', ttlMs: 60_000 })
  await call(api.base, 'DELETE', '/checkout/st-cancel')
  await call(api.base, 'POST', '/checkout', { id: 'st-exp', ttlMs: 1000 })
  await outputMatches(t, consumer, /expired st-exp /, 20_000)
  await outputMatches(t, consumer, /cancelled st-cancel /, 5000)
  const seen = (id: string) => [...consumer.output().matchAll(new RegExp(`^(\\w+) ${id} `, 'gm'))].map((m) => m[1])
  t.same(seen('st-done'), ['created', 'completed'])
  t.same(seen('st-cancel'), ['created', 'cancelled'])
  t.same(seen('st-exp'), ['created', 'expired'])
  const stopped = await consumer.signal('SIGTERM')
  t.equal(stopped.code, 0, 'SIGTERM stops it after the current batch')
  t.same(await redis.client().xpending(`${KEY_PREFIX}events`, 'billing'), [0, null, null, null], 'every event acknowledged')
})

t.test('the README\'s notify-inventory handler runs as written: POSTs the cart with the idempotency key', async (t) => {
  const readme = readFileSync(join(root, 'README.md'), 'utf8')
  const code = readme.match(/```js\n(\/\/ handlers\/notify-inventory\.mjs[\s\S]*?)```/)?.[1]
  if (!code) throw new Error('README.md has no notify-inventory handler block')
  const file = join(tempDir(t, 'readme-handler'), 'notify-inventory.mjs')
  writeFileSync(file, code)
  const received: Array<{ key: string | undefined, body: unknown }> = []
  const statuses = [204, 503]
  const server = createServer((req, res) => {
    let body = ''
    req.on('data', (d: Buffer) => { body += d.toString() })
    req.on('end', () => {
      received.push({ key: req.headers['idempotency-key'] as string | undefined, body: JSON.parse(body) })
      res.writeHead(statuses.shift() ?? 500).end()
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => server.close())
  process.env.INVENTORY_URL = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  t.teardown(() => { delete process.env.INVENTORY_URL })
  const [handler] = await loadHandlers(file)
  const event = {
    id: 'o-inv', payload: { cart: ['sku-1'] }, deadline: '', expiredAt: '', attempt: 1, generation: 1, idempotencyKey: 'o-inv:e:1'
  }
  const ctx = { log: pino({ level: 'silent' }), signal: new AbortController().signal }
  await handler!.handle(event, ctx)
  t.same(received, [{ key: 'o-inv:e:1', body: { orderId: 'o-inv', cart: ['sku-1'] } }])
  await t.rejects(async () => await handler!.handle(event, ctx), /inventory answered 503/, 'a refusal fails the run')
})
