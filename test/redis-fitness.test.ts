import { randomBytes } from 'node:crypto'
import { connect, createServer } from 'node:net'
import t from 'tap'
import { main } from '../src/cli/args.js'
import { closeRedis, createRedis } from '../src/redis/connection.js'
import { checkEvictionPolicy, checkKeyspaceEvents, checkPubSub } from '../src/redis/fitness.js'
import { startRedis } from './helpers/redis.js'

/** The fitness checks against real redis-servers: fit, unfit, and CONFIG or pub/sub refused. */
const redis = await startRedis({ extraArgs: ['--maxmemory-policy', 'allkeys-lru'] })
t.teardown(redis.stop)
const client = createRedis({ url: redis.url, role: 'worker' })
t.teardown(async () => await closeRedis(client))
const channel = `t${randomBytes(4).toString('hex')}:due`

t.test('checkoutctl doctor reports each check with its fix', async (t) => {
  let out = ''
  const io = { out: (text: string) => { out += text }, err: () => {} }
  const env = { REDIS_URL: redis.url, KEY_PREFIX: channel.replace(/due$/, ''), LOG_LEVEL: 'silent' }
  t.equal(await main(['doctor', '--json'], env, io), 0)
  const report = JSON.parse(out) as { fit: boolean, findings: Array<{ check: string, ok: boolean }> }
  t.equal(report.fit, false, 'allkeys-lru: not fit')
  t.same(report.findings.map((f) => [f.check, f.ok]), [['maxmemory-policy', false], ['keyspace-events', false], ['pubsub', true]])
  out = ''
  await main(['doctor'], env, io)
  t.match(out, /maxmemory-policy\s+NOT FIT\s+maxmemory-policy allkeys-lru evicts[^\n]*\n\s+fix: set maxmemory-policy noeviction/)
})

t.test('an evicting policy is found unfit; noeviction and volatile-* are fit', async (t) => {
  t.match(await checkEvictionPolicy(client), { ok: false, detail: /allkeys-lru evicts/, fix: /noeviction/ })
  for (const policy of ['noeviction', 'volatile-lru']) {
    await client.config('SET', 'maxmemory-policy', policy)
    t.match(await checkEvictionPolicy(client), { ok: true }, policy)
  }
})

t.test('keyspace events off, then on', async (t) => {
  await client.config('SET', 'notify-keyspace-events', '')
  t.match(await checkKeyspaceEvents(client), { ok: false, fix: /notify-keyspace-events Ex/ })
  await client.config('SET', 'notify-keyspace-events', 'Ex')
  t.match(await checkKeyspaceEvents(client), { ok: true })
})

t.test('pub/sub passes on a direct connection', async (t) => {
  t.match(await checkPubSub(client, channel), { ok: true })
})

t.test('CONFIG refused: says what could not be checked and how to set it; pub/sub refused: found', async (t) => {
  await client.call('ACL', 'SETUSER', 'managed', 'on', '>pw', '~*', 'resetchannels', '+@all', '-config', '-subscribe')
  const managed = createRedis({ url: redis.url.replace('redis://', 'redis://managed:pw@'), role: 'worker' })
  t.teardown(async () => await closeRedis(managed))
  t.match(await checkEvictionPolicy(managed), { ok: undefined, detail: /could not read maxmemory-policy \(NOPERM/, fix: /parameter group/ })
  t.match(await checkKeyspaceEvents(managed), { ok: undefined, fix: /heroku redis:keyspace-notifications -c Ex/ })
  t.match(await checkPubSub(managed, channel), { ok: false, detail: /pub\/sub refused/ })
})

t.test('a proxy that passes commands but drops published messages: found by the probe', async (t) => {
  // Forwards both ways, except the chunks Redis pushes to a subscriber (RESP "message" arrays).
  const proxy = createServer((client) => {
    const server = connect(redis.port, '127.0.0.1')
    client.pipe(server)
    server.on('data', (chunk: Buffer) => { if (!chunk.toString().startsWith('*3\r\n$7\r\nmessage\r\n')) client.write(chunk) })
    const end = () => { client.destroy(); server.destroy() }
    client.on('error', end).on('close', end)
    server.on('error', end).on('close', end)
  })
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => proxy.close(() => resolve())))
  const port = (proxy.address() as { port: number }).port
  const proxied = createRedis({ url: `redis://127.0.0.1:${port}/0`, role: 'worker' })
  t.teardown(async () => await closeRedis(proxied))
  t.match(await checkPubSub(proxied, channel, 300), { ok: false, detail: /did not arrive within 300 ms/ })
  t.match(await checkEvictionPolicy(proxied), { ok: true }, 'commands pass')
})
