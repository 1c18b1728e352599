import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { ConfigError, loadConfig, parseRedisUrl } from '../src/config.js'
import { redisDeployment } from '../src/redis/deployment.js'
import { roleOptions } from '../src/redis/options.js'
import { tempDir } from './helpers/temp.js'

t.test('defaults', async (t) => {
  const c = loadConfig({})
  t.equal(c.PORT, 3000)
  t.equal(c.REDIS_URL, 'redis://127.0.0.1:6379/0')
  t.equal(c.CHECKOUT_DEFAULT_TTL_MS, 15 * 60_000)
  t.equal(c.CHECKOUT_MAX_TTL_MS, 24 * 3_600_000)
  t.equal(c.CHECKOUT_RESULT_RETENTION_MS, 24 * 3_600_000)
  t.equal(c.KEY_PREFIX, 'ce:')
  t.equal(c.LOG_LEVEL, 'info')
  t.equal(c.EXPIRY_HANDLERS, 'log')
})

t.test('the heartbeat follows a short lease unless set: a sixth of it', async (t) => {
  t.match(loadConfig({}), { EXPIRY_LEASE_MS: 3000, EXPIRY_HEARTBEAT_MS: 500 })
  t.match(loadConfig({ EXPIRY_LEASE_MS: '1000' }), { EXPIRY_LEASE_MS: 1000, EXPIRY_HEARTBEAT_MS: 166 })
  t.match(loadConfig({ EXPIRY_LEASE_MS: '10000' }), { EXPIRY_HEARTBEAT_MS: 500 }, 'a longer lease keeps 500')
  t.match(loadConfig({ EXPIRY_LEASE_MS: '1000', EXPIRY_HEARTBEAT_MS: '300' }), { EXPIRY_HEARTBEAT_MS: 300 }, 'one set is kept')
})

t.test('parses numbers and keeps strings', async (t) => {
  const c = loadConfig({ PORT: '8080', HOST: '0.0.0.0', CHECKOUT_DEFAULT_TTL_MS: '20000', LOG_LEVEL: 'debug' })
  t.equal(c.PORT, 8080)
  t.equal(c.HOST, '0.0.0.0')
  t.equal(c.CHECKOUT_DEFAULT_TTL_MS, 20000)
  t.equal(c.LOG_LEVEL, 'debug')
})

t.test('a bad value names the variable and what is allowed', async (t) => {
  const cases: Array<[Record<string, string>, RegExp]> = [
    [{ PORT: 'abc' }, /^Invalid PORT="abc": expected an integer from 0 to 65535$/],
    [{ PORT: '70000' }, /^Invalid PORT="70000": expected an integer/],
    [{ PORT: '1.5' }, /^Invalid PORT="1.5"/],
    [{ LOG_LEVEL: 'loud' }, /^Invalid LOG_LEVEL="loud": expected one of fatal, error, warn, info, debug, trace, silent$/],
    [{ REDIS_URL: 'http://x' }, /^Invalid REDIS_URL="http:\/\/x": expected a string matching/],
    [{ REDIS_URL: 'redis://host:6379/abc' }, /^Invalid REDIS_URL: database "abc" is not a number$/],
    [{ KEY_PREFIX: 'has space' }, /^Invalid KEY_PREFIX/],
    [{ CHECKOUT_MAX_TTL_MS: '999' }, /^Invalid CHECKOUT_MAX_TTL_MS="999"/],
    [{ CHECKOUT_DEFAULT_TTL_MS: '90000', CHECKOUT_MAX_TTL_MS: '60000' }, /^Invalid CHECKOUT_DEFAULT_TTL_MS=90000: expected at most CHECKOUT_MAX_TTL_MS/],
    [{ EXPIRY_LEASE_MS: '1000', EXPIRY_HEARTBEAT_MS: '400' }, /^Invalid EXPIRY_HEARTBEAT_MS=400: expected at most a third of EXPIRY_LEASE_MS \(1000\)/]
  ]
  for (const [env, message] of cases) {
    t.throws(() => loadConfig(env), { name: 'ConfigError', message }, JSON.stringify(env))
  }
  t.ok(new ConfigError('x') instanceof Error)
})

t.test('REDIS_URL forms, including Heroku-style rediss with user and password', async (t) => {
  t.same(parseRedisUrl('redis://127.0.0.1:6379/0'), { url: 'redis://127.0.0.1:6379/0', db: 0, tls: false })
  t.same(parseRedisUrl('redis://localhost:6379'), { url: 'redis://localhost:6379', db: 0, tls: false })
  t.same(parseRedisUrl('rediss://user:p%40ss@example.com:25061/3'), { url: 'rediss://user:p%40ss@example.com:25061/3', db: 3, tls: true })
  t.throws(() => parseRedisUrl('redis://'), /REDIS_URL/)
  t.equal(loadConfig({ REDIS_URL: 'rediss://default:secret@h.example:6380/2' }).REDIS_URL, 'rediss://default:secret@h.example:6380/2')
})

t.test('Redis topology settings are checked together, each error naming its variable', async (t) => {
  const cases: Array<[Record<string, string>, RegExp]> = [
    [{ REDIS_CLUSTER_NODES: 'a:1,b' }, /^Invalid REDIS_CLUSTER_NODES="a:1,b": expected host:port,host:port$/],
    [{ REDIS_SENTINELS: 'a:1', REDIS_CLUSTER_NODES: 'b:2' }, /^Invalid REDIS_SENTINELS="a:1": set either REDIS_CLUSTER_NODES or REDIS_SENTINELS/],
    [{ REDIS_SENTINELS: 'a:1' }, /^Invalid REDIS_SENTINEL_MASTER="": expected the master group name/],
    [{ REDIS_CLUSTER_NODES: 'a:1', REDIS_URL: 'redis://x/2' }, /^Invalid REDIS_URL: a Redis Cluster has only database 0/],
    [{ REDIS_NAT_MAP: '10.0.0.1:6379=127.0.0.1:7000' }, /^Invalid REDIS_NAT_MAP=.*only used with REDIS_CLUSTER_NODES or REDIS_SENTINELS$/],
    [{ REDIS_CLUSTER_NODES: 'a:1', REDIS_NAT_MAP: 'x=y' }, /^Invalid REDIS_NAT_MAP="x=y": expected host:port=host:port/],
    [{ REDIS_TLS_CA_FILE: '/ca.pem' }, /^Invalid REDIS_TLS_CA_FILE="\/ca.pem": TLS settings need a rediss:\/\/ REDIS_URL$/],
    [{ REDIS_URL: 'rediss://h:1', REDIS_TLS_CERT_FILE: '/c.pem' }, /^Invalid REDIS_TLS_KEY_FILE="": a client certificate needs both/],
    [{ REDIS_READ_FROM: 'replica' }, /^Invalid REDIS_READ_FROM="replica": replica reads on a standalone primary need REDIS_REPLICA_URL/],
    [{ REDIS_READ_FROM: 'nearest' }, /^Invalid REDIS_READ_FROM="nearest": expected one of primary, replica$/],
    [{ REDIS_SENTINELS: 'a:1', REDIS_SENTINEL_MASTER: 'm', REDIS_REPLICA_URL: 'redis://r:1' }, /^Invalid REDIS_REPLICA_URL=.*only for a standalone primary/],
    [{ REDIS_WAIT_REPLICAS: '1', REDIS_WAIT_TIMEOUT_MS: '2000' }, /^Invalid REDIS_WAIT_TIMEOUT_MS="2000": expected less than REDIS_COMMAND_TIMEOUT_MS \(2000\)$/]
  ]
  for (const [env, message] of cases) {
    t.throws(() => loadConfig(env), { name: 'ConfigError', message }, JSON.stringify(env))
  }
})

t.test('the deployment: mode, nodes, NAT map and the credentials of REDIS_URL for every node', async (t) => {
  const cluster = redisDeployment(loadConfig({
    REDIS_URL: 'rediss://checkout-api:p%40ss@ignored:1/0',
    REDIS_CLUSTER_NODES: 'node-1.example:6379,10.0.0.2:6380',
    REDIS_NAT_MAP: '10.0.0.2:6380=127.0.0.1:7001'
  }))
  t.equal(cluster.mode, 'cluster')
  t.same(cluster.mode === 'cluster' && cluster.nodes, [{ host: 'node-1.example', port: 6379 }, { host: '10.0.0.2', port: 6380 }])
  t.same(cluster.mode === 'cluster' && cluster.natMap, { '10.0.0.2:6380': { host: '127.0.0.1', port: 7001 } })
  t.equal(cluster.username, 'checkout-api')
  t.equal(cluster.password, 'p@ss')
  t.same(cluster.tls, {}, 'rediss: TLS with the system CAs')
  t.notMatch(cluster.describe, /p@ss|p%40ss/, 'no password in log lines')

  const sentinel = redisDeployment(loadConfig({ REDIS_URL: 'redis://:secret@x/3', REDIS_SENTINELS: 's1:26379,s2:26379', REDIS_SENTINEL_MASTER: 'checkout' }))
  t.equal(sentinel.mode, 'sentinel')
  t.equal(sentinel.db, 3)
  t.equal(sentinel.password, 'secret')
  t.equal(sentinel.tls, undefined)

  const standalone = redisDeployment(loadConfig({ REDIS_READ_FROM: 'replica', REDIS_REPLICA_URL: 'redis://reader.example:6380' }))
  t.same(standalone.mode === 'standalone' && standalone.replica, { host: 'reader.example', port: 6380 })
})

t.test('TLS files are read at start; a missing or non-PEM file names its variable', async (t) => {
  const dir = tempDir(t, 'config-tls')
  const pem = join(dir, 'ca.pem')
  writeFileSync(pem, '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n')
  writeFileSync(join(dir, 'junk.txt'), 'not a certificate')
  const env = { REDIS_URL: 'rediss://h:6380', REDIS_TLS_SERVERNAME: 'redis.internal' }
  const tls = redisDeployment(loadConfig({ ...env, REDIS_TLS_CA_FILE: pem })).tls
  t.match(tls, { servername: 'redis.internal' })
  t.match(String(tls?.ca), /BEGIN CERTIFICATE/)
  t.throws(() => redisDeployment(loadConfig({ ...env, REDIS_TLS_CA_FILE: join(dir, 'nope.pem') })),
    { name: 'ConfigError', message: /^Invalid REDIS_TLS_CA_FILE=".*nope.pem": cannot read the file \(ENOENT\)$/ })
  t.throws(() => redisDeployment(loadConfig({ ...env, REDIS_TLS_CA_FILE: join(dir, 'junk.txt') })),
    { name: 'ConfigError', message: /^Invalid REDIS_TLS_CA_FILE=".*junk.txt": not a PEM file$/ })
})

t.test('connection roles: capped backoff, READONLY reconnects (the API fails the command, the worker resends it)', async (t) => {
  const timeouts = { connectTimeoutMs: 1000, commandTimeoutMs: 300, retryMaxDelayMs: 800 }
  const api = roleOptions('api', timeouts)
  t.same([1, 2, 3, 4, 10, 100].map((n) => api.retryStrategy?.(n)), [100, 200, 400, 800, 800, 800])
  t.equal(api.commandTimeout, 300)
  t.equal(api.enableOfflineQueue, false)
  let told = 0
  const worker = roleOptions('worker', timeouts, () => { told++ })
  const readonly = (command: string) => Object.assign(new Error("READONLY You can't write against a read only replica."), { command: { name: command, args: [] } })
  t.equal(api.reconnectOnError?.(readonly('evalsha')), 1)
  t.equal(worker.reconnectOnError?.(readonly('evalsha')), 2, 'a script that met READONLY changed nothing: sent again')
  t.equal(worker.reconnectOnError?.(readonly('hincrby')), 1, 'other commands (perhaps queued in a MULTI) fail instead')
  t.equal(told, 2, 'the worker hears of it (its subscriber reconnects too)')
  t.equal(worker.reconnectOnError?.(new Error('ERR wrong number of arguments')), false)
  t.equal(worker.maxRetriesPerRequest, null)
})

t.test('a config error never echoes a password, a URL query or a secret, and still names the variable', async (t) => {
  const password = 'hunter2-Zq9'
  const cases: Array<[Record<string, string>, string]> = [
    [{ REDIS_URL: `http://app:${password}@h:6379/0` }, 'REDIS_URL'],
    [{ REDIS_URL: `redis//app:${password}@h:6379/0` }, 'REDIS_URL'],
    [{ REDIS_URL: `app:${password}@h:6379/0` }, 'REDIS_URL'],
    [{ REDIS_URL: `${password}@h:6379` }, 'REDIS_URL'],
    [{ REDIS_URL: `redis://app:${password}@h:99999/0` }, 'REDIS_URL'],
    [{ REDIS_URL: `redis://app:${password}@h:6379/x?password=${password}` }, 'REDIS_URL'],
    [{ REDIS_URL: `redis://h:6379/${password}@x` }, 'REDIS_URL'],
    [{ REDIS_READ_FROM: 'replica', REDIS_REPLICA_URL: `http://app:${password}@r:1` }, 'REDIS_REPLICA_URL'],
    [{ REDIS_READ_FROM: 'replica', REDIS_REPLICA_URL: `redis://app:${password}@r:99999` }, 'REDIS_REPLICA_URL'],
    [{ REDIS_READ_FROM: 'replica', REDIS_REPLICA_URL: `redis://app:${password}@r:1/x` }, 'REDIS_REPLICA_URL'],
    [{ REDIS_SENTINELS: 'a:1', REDIS_SENTINEL_MASTER: 'm', REDIS_REPLICA_URL: `redis://app:${password}@r:1` }, 'REDIS_REPLICA_URL'],
    [{ WEBHOOK_URL: `ftp://app:${password}@hooks.example/x` }, 'WEBHOOK_URL'],
    [{ WEBHOOK_URL: `https://app:${password}@hooks.example/x` }, 'WEBHOOK_URL'],
    [{ WEBHOOK_URL: `https://${password}@hooks.example/x` }, 'WEBHOOK_URL'],
    [{ WEBHOOK_URL: `https://hooks.example:99999/x?token=${password}` }, 'WEBHOOK_URL'],
    [{ WEBHOOK_SECRET: `${password},` }, 'WEBHOOK_SECRET'],
    [{ WEBHOOK_SECRET: `${password}, other` }, 'WEBHOOK_SECRET'],
    [{ WEBHOOK_SECRET: `${password},b,c` }, 'WEBHOOK_SECRET']
  ]
  for (const [env, name] of cases) {
    let message = ''
    try {
      redisDeployment(loadConfig(env))
    } catch (err) {
      t.equal((err as Error).name, 'ConfigError', `${name}: a ConfigError, not a crash (${(err as Error).message})`)
      message = `${(err as Error).message} ${JSON.stringify(err)}`
    }
    t.match(message, new RegExp(`^Invalid ${name}\\b`), `refused, naming ${name}`)
    t.notMatch(message, password, `${name}: no secret in "${message}"`)
  }
})

t.test('WEBHOOK_URL with user:password@ is refused (it would not be sent and would be logged); a header secret is the way', async (t) => {
  t.throws(() => loadConfig({ WEBHOOK_URL: 'https://user:pw@hooks.example/expired' }), {
    name: 'ConfigError', message: /^Invalid WEBHOOK_URL.*credentials.*WEBHOOK_SECRET/
  })
  t.equal(loadConfig({ WEBHOOK_URL: 'https://hooks.example/expired?tenant=7' }).WEBHOOK_URL, 'https://hooks.example/expired?tenant=7')
})

t.test('WEBHOOK_SECRET holds one secret, or two separated by a comma during a rotation', async (t) => {
  t.equal(loadConfig({ WEBHOOK_SECRET: 'whsec_a' }).WEBHOOK_SECRET, 'whsec_a')
  t.equal(loadConfig({ WEBHOOK_SECRET: 'whsec_a,whsec_b' }).WEBHOOK_SECRET, 'whsec_a,whsec_b')
  for (const bad of [',', 'a,', ',b', 'a,,b', 'a, b', ' a', 'a,b,c', 'a,a']) {
    t.throws(() => loadConfig({ WEBHOOK_SECRET: bad }), { name: 'ConfigError', message: /^Invalid WEBHOOK_SECRET: expected one secret, or two/ }, JSON.stringify(bad))
  }
})
