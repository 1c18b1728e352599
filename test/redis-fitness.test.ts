import { randomBytes } from 'node:crypto'
import { connect, createServer } from 'node:net'
import t from 'tap'
import { main } from '../src/cli/args.js'
import { closeRedis, createRedis } from '../src/redis/connection.js'
import {
  checkClusterSlots, checkEvictionPolicy, checkKeyspaceEvents, checkPersistence, checkPubSub, checkVersion, versionFinding
} from '../src/redis/fitness.js'
import { startApi, startChild } from './helpers/processes.js'
import { startRedis } from './helpers/redis.js'

/** The fitness checks against real redis-servers: fit, unfit, and CONFIG or pub/sub refused. */
const redis = await startRedis({ extraArgs: ['--maxmemory-policy', 'allkeys-lru'] })
t.teardown(redis.stop)
const client = createRedis({ url: redis.url, role: 'worker' })
t.teardown(async () => await closeRedis(client))
const channel = `t${randomBytes(4).toString('hex')}:due`

t.test('checkoutctl doctor reports each check with its fix and exits 3 when one fails', async (t) => {
  let out = ''
  const io = { out: (text: string) => { out += text }, err: () => {} }
  const env = { REDIS_URL: redis.url, KEY_PREFIX: channel.replace(/due$/, ''), LOG_LEVEL: 'silent' }
  t.equal(await main(['doctor', '--json'], env, io), 3)
  const report = JSON.parse(out) as { fit: boolean, findings: Array<{ check: string, ok: boolean }> }
  t.equal(report.fit, false, 'allkeys-lru: not fit')
  t.same(report.findings.map((f) => [f.check, f.ok]), [
    ['maxmemory-policy', false], ['persistence', false], ['version', true], ['keyspace-events', false], ['pubsub', true]
  ])
  out = ''
  t.equal(await main(['doctor'], env, io), 3)
  t.match(out, /maxmemory-policy\s+NOT FIT\s+maxmemory-policy allkeys-lru evicts[^\n]*\n\s+fix: set maxmemory-policy noeviction/)
  t.match(out, /persistence\s+NOT FIT\s+appendonly no and save "": a restart of Redis loses every hold/)
})

const env = { REDIS_URL: redis.url, KEY_PREFIX: channel.replace(/due$/, '') }
const exitOf = async (child: ReturnType<typeof startChild>) => {
  const exited = await Promise.race([child.exited, new Promise<'hung'>((resolve) => setTimeout(() => resolve('hung'), 15_000))])
  if (exited === 'hung') child.proc.kill('SIGKILL')
  return exited
}

t.test('an evicting Redis: the API and the worker refuse to start unless ALLOW_EVICTING_REDIS=true', async (t) => {
  for (const entry of ['src/server.ts', 'workers/expiry-worker.ts'] as const) {
    const child = startChild(entry, { ...env, LOG_LEVEL: 'warn' })
    t.same(await exitOf(child), { code: 1, signal: null }, `${entry}: exit code 1`)
    t.match(child.output(), /checkout-expiry: maxmemory-policy allkeys-lru evicts[^\n]*Fix: set maxmemory-policy noeviction[^\n]*ALLOW_EVICTING_REDIS=true/, entry)
  }
  const api = await startApi({ ...env, ALLOW_EVICTING_REDIS: 'true' })
  t.match(api.output(), /"level":50[^\n]*REDIS MAY EVICT HOLDS/, 'allowed: started, the finding at error level')
  t.match(await api.signal('SIGTERM'), { code: 0 })
})

t.test('only noeviction is fit: volatile-* evicts holds, which all have a TTL', async (t) => {
  t.match(await checkEvictionPolicy(client), { ok: false, detail: /allkeys-lru evicts/, fix: /noeviction/ })
  await client.config('SET', 'maxmemory-policy', 'volatile-lru')
  t.match(await checkEvictionPolicy(client), { ok: false, detail: /volatile-lru evicts/ })
  await client.config('SET', 'maxmemory-policy', 'noeviction')
  t.match(await checkEvictionPolicy(client), { ok: true })
})

t.test('persistence: neither AOF nor snapshots warns; either one is fit', async (t) => {
  t.match(await checkPersistence(client), { ok: false, detail: /restart of Redis loses every hold/ })
  await client.config('SET', 'save', '3600 1')
  t.match(await checkPersistence(client), { ok: true }, 'snapshots')
  await client.config('SET', 'save', '')
  await client.config('SET', 'appendonly', 'yes')
  t.match(await checkPersistence(client), { ok: true }, 'append-only file')
  await client.config('SET', 'appendonly', 'no')
})

t.test('version: this server is read from INFO; older than 7.0 warns', async (t) => {
  t.match(await checkVersion(client), { ok: true, detail: /^redis_version 7\./ })
  t.match(versionFinding('6.2.14'), { ok: false, fix: /7\.0 or later/ })
  t.match(versionFinding('7.0.0'), { ok: true })
})

t.test('cluster slots: none on a standalone server; a node serving half the slots warns until all are served', async (t) => {
  t.equal(await checkClusterSlots(client), undefined, 'standalone: no finding')
  const node = await startRedis({ extraArgs: ['--cluster-enabled', 'yes'] })
  t.teardown(node.stop)
  const nodeClient = createRedis({ url: node.url, role: 'worker' })
  t.teardown(async () => await closeRedis(nodeClient))
  await nodeClient.call('CLUSTER', 'ADDSLOTSRANGE', '0', '8191')
  t.match(await checkClusterSlots(nodeClient), { ok: false, detail: /^8192 of 16384 slots are served/ })
  await nodeClient.call('CLUSTER', 'ADDSLOTSRANGE', '8192', '16383')
  let finding = await checkClusterSlots(nodeClient)
  // cluster_state turns ok on the node's next cron tick.
  for (let i = 0; i < 40 && finding?.ok !== true; i++) {
    await new Promise((resolve) => setTimeout(resolve, 50))
    finding = await checkClusterSlots(nodeClient)
  }
  t.match(finding, { ok: true, detail: /all 16384 slots/ })
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
  t.match(await checkPersistence(managed), { ok: undefined, detail: /could not read appendonly and save \(NOPERM/ })
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
