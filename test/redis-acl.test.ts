import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { Redis } from 'ioredis'
import t from 'tap'
import { json, testApp, testConfig } from './helpers/app.js'
import { startChild } from './helpers/processes.js'
import { spawnRedis } from './helpers/replica.js'
import { recorder, testWorker, until } from './helpers/worker.js'

/**
 * The least-privilege ACL rules of docs/deploy.md, applied exactly as the
 * document writes them (read from its `acl` block): the API and the worker
 * do all their work under them, Redis logs no denied command, and what the
 * rules forbid is refused.
 */
const doc = readFileSync(new URL('../docs/deploy.md', import.meta.url), 'utf8')
const block = /```acl\n([\s\S]*?)```/.exec(doc)?.[1]
if (block === undefined) throw new Error('docs/deploy.md has no ```acl block')

const prefix = `t${randomBytes(4).toString('hex')}:`
const passwords = { API_PASSWORD: randomBytes(12).toString('hex'), WORKER_PASSWORD: randomBytes(12).toString('hex') }
/** The document's lines, for this test's KEY_PREFIX and passwords. */
const rules = block.trim().split('\n').map((line) => {
  const [acl, setuser, ...args] = line.trim().split(/\s+/)
  if (acl !== 'ACL' || setuser !== 'SETUSER') throw new Error(`not an ACL SETUSER line: ${line}`)
  return args.map((a) => a
    .replace(/^~ce:/, `~${prefix}`)
    .replace(/^&ce:/, `&${prefix}`)
    .replace(/^>(API_PASSWORD|WORKER_PASSWORD)$/, (_m, name: keyof typeof passwords) => `>${passwords[name]}`))
})

const node = await spawnRedis(t, [])
const admin = node.client()
for (const args of rules) await admin.call('ACL', 'SETUSER', ...args)
await admin.call('ACL', 'LOG', 'RESET')
const url = (user: string, password: string) => `redis://${user}:${password}@127.0.0.1:${node.port}/0`
const env = { KEY_PREFIX: prefix, EVENT_STREAM: 'true', RATE_LIMIT_MAX: '1000' }

const denied = async () => (await admin.call('ACL', 'LOG') as unknown[][]).map((entry) => {
  const fields: Record<string, unknown> = {}
  for (let i = 0; i + 1 < entry.length; i += 2) fields[String(entry[i])] = entry[i + 1]
  return `${String(fields.username)}: ${String(fields.reason)} ${String(fields.object)}`
})

t.test('the API and the worker work under the documented rules; Redis denied them nothing', async (t) => {
  const { app } = await testApp(url('checkout-api', passwords.API_PASSWORD), env)
  t.teardown(() => app.close())
  const { calls, handler } = recorder()
  const worker = await testWorker(testConfig(url('checkout-worker', passwords.WORKER_PASSWORD), env), [handler])
  t.teardown(() => worker.close(2000))

  t.equal((await app.inject({ method: 'POST', url: '/checkout', ...json({ id: 'acl-expires', ttlMs: 1000, payload: { a: 1 } }) })).statusCode, 201)
  for (const id of ['acl-done', 'acl-later']) {
    t.equal((await app.inject({ method: 'POST', url: '/checkout', headers: { 'idempotency-key': `k-${id}`, 'content-type': 'application/json' }, payload: JSON.stringify({ id, ttlMs: 60_000 }) })).statusCode, 201)
  }
  t.equal((await app.inject({ method: 'GET', url: '/checkout/acl-expires' })).statusCode, 200)
  t.equal((await app.inject({ method: 'POST', url: '/checkout/acl-done/complete' })).statusCode, 200)
  t.equal((await app.inject({ method: 'PATCH', url: '/checkout/acl-later', ...json({ ttlMs: 30_000 }) })).statusCode, 200)
  t.equal((await app.inject({ method: 'DELETE', url: '/checkout/acl-later' })).statusCode, 200)
  t.equal((await app.inject({ method: 'GET', url: '/readyz' })).statusCode, 200)

  t.ok(await until(() => calls.some((c) => c.id === 'acl-expires'), 8000), 'the worker ran the expiry')
  t.ok(await until(async () => await admin.xlen(`${prefix}events`) >= 6, 5000), 'the worker relayed the lifecycle events')
  const flags = (await admin.config('GET', 'notify-keyspace-events') as unknown as string[])[1] ?? ''
  t.ok(flags.includes('E') && flags.includes('x'), `the worker enabled expired events with CONFIG SET (${flags})`)
  t.ok(await until(() => worker.readiness().ready, 2000), 'the worker is subscribed to its keyevent channel')
  // Stopping runs what only a stop runs: the drain mark and the leave of the membership.
  await worker.close(2000)
  t.equal(await admin.zcount(`${prefix}{workers}:members:${process.env.TEST_KEY_FORMAT ?? 3}`, '-inf', '(0'), 1, 'the worker left the membership')
  t.same(await denied(), [], 'ACL LOG: nothing denied')
})

t.test('what the rules forbid is refused', async (t) => {
  const as = (user: string, password: string) => {
    const c = new Redis(url(user, password), { maxRetriesPerRequest: 0, protocol: 2 })
    c.on('error', () => {})
    t.teardown(() => c.disconnect())
    return c
  }
  const api = as('checkout-api', passwords.API_PASSWORD)
  const worker = as('checkout-worker', passwords.WORKER_PASSWORD)
  await t.rejects(api.config('SET', 'notify-keyspace-events', 'Ex'), /^NOPERM/, 'API: CONFIG SET')
  await t.rejects(api.keys('*'), /^NOPERM/, 'API: KEYS')
  await t.rejects(api.flushall(), /^NOPERM/, 'API: FLUSHALL')
  await t.rejects(api.script('FLUSH'), /^NOPERM/, 'API: SCRIPT FLUSH')
  await t.rejects(api.get('someone-else:key'), /^NOPERM/, 'API: a key outside KEY_PREFIX')
  await t.rejects(worker.flushdb(), /^NOPERM/, 'worker: FLUSHDB')
  await t.rejects(worker.keys('*'), /^NOPERM/, 'worker: KEYS')
  await t.rejects(worker.call('CONFIG', 'RESETSTAT'), /^NOPERM/, 'worker: CONFIG subcommands other than GET and SET')
  await t.rejects(worker.psubscribe('__keyspace@0__:*'), /^NOPERM/, 'worker: other channels')
})

t.test('a password Redis refuses stops the API at start with one line', async (t) => {
  const child = startChild('src/server.ts', { REDIS_URL: url('checkout-api', 'wrong-password'), KEY_PREFIX: prefix, LOG_LEVEL: 'warn' })
  const exited = await Promise.race([child.exited, new Promise<'hung'>((resolve) => setTimeout(() => resolve('hung'), 15_000))])
  if (exited === 'hung') child.proc.kill('SIGKILL')
  t.same(exited, { code: 1, signal: null }, 'exit code 1')
  t.match(child.output().trim(), /^checkout-expiry: cannot connect to Redis \(redis:\/\/127\.0\.0\.1:\d+\/0\): Redis refused the credentials \(WRONGPASS[^\n]*\): check the user and password in REDIS_URL$/)
  t.notMatch(child.output(), /wrong-password/, 'the password is not printed')
})
