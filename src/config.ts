import { Type, type Static, type TSchema } from '@sinclair/typebox'
import { Value } from '@sinclair/typebox/value'
import { hasCredentials, maskUrl } from './url-secrets.js'

/**
 * Every setting the API and the worker read, from the environment only.
 * Validated once at start: a bad value stops the process with one line that
 * names the variable and what it accepts.
 */
const Int = (min: number, max: number, dflt: number, description: string) =>
  Type.Integer({ minimum: min, maximum: max, default: dflt, description })
const Bool = (dflt: boolean, description: string) => Type.Boolean({ default: dflt, description })
/** An optional string; `expected` is what the error message says it must look like. */
const Str = (pattern: string, description: string, expected: string) => Type.String({ pattern, default: '', description, expected })

const DEFAULT_HEARTBEAT_MS = 500

export const ConfigSchema = Type.Object({
  PORT: Int(0, 65535, 3000, 'API listen port'),
  HOST: Type.String({ minLength: 1, default: '127.0.0.1', description: 'API listen address' }),
  REDIS_URL: Type.String({
    pattern: '^rediss?://',
    default: 'redis://127.0.0.1:6379/0',
    description: 'redis:// or rediss:// URL, with optional user:password and /db'
  }),
  API_TOKENS: Type.String({ default: '', description: 'comma-separated bearer tokens; when set (or API_TOKENS_FILE), /checkout needs one' }),
  API_TOKENS_FILE: Type.String({ default: '', description: 'file with one bearer token per line (read at start), added to API_TOKENS' }),
  DASHBOARD: Bool(false, 'serve the operator dashboard at /dashboard and its JSON API under /admin (needs ADMIN_TOKENS)'),
  ADMIN_TOKENS: Type.String({ default: '', description: 'comma-separated bearer tokens for /admin (the dashboard); API_TOKENS are refused there' }),
  METRICS_REQUIRE_AUTH: Bool(false, 'with tokens set, GET /metrics needs a token too'),
  DOCS_REQUIRE_AUTH: Bool(false, 'with tokens set, /docs needs a token too'),
  RATE_LIMIT_MAX: Int(0, 1_000_000, 0, 'requests per client per RATE_LIMIT_WINDOW_MS on /checkout, counted in Redis; 0 turns the limit off'),
  RATE_LIMIT_WINDOW_MS: Int(1000, 3_600_000, 60_000, 'the rate-limit window'),
  REDIS_COMMAND_TIMEOUT_MS: Int(50, 60_000, 2000, 'API requests fail with 503 when Redis has not answered within this time'),
  REDIS_CONNECT_TIMEOUT_MS: Int(100, 60_000, 5000, 'a connection attempt (TCP, TLS, AUTH) that takes longer is dropped and retried'),
  REDIS_RETRY_MAX_DELAY_MS: Int(50, 60_000, 2000, 'reconnect delays double from 100 ms up to this cap'),
  REDIS_CLUSTER_NODES: Str('^$|^[^,\\s]+:\\d+(,[^,\\s]+:\\d+)*$', 'Redis Cluster startup nodes host:port,host:port; REDIS_URL then gives only TLS and credentials', 'host:port,host:port'),
  REDIS_NAT_MAP: Str('^$|^[^,=\\s]+:\\d+=[^,=\\s]+:\\d+(,[^,=\\s]+:\\d+=[^,=\\s]+:\\d+)*$', 'announced:port=reachable:port pairs, for nodes whose announced address differs', 'host:port=host:port,host:port=host:port'),
  REDIS_SENTINELS: Str('^$|^[^,\\s]+:\\d+(,[^,\\s]+:\\d+)*$', 'Sentinel addresses host:port,host:port; REDIS_URL then gives only TLS, credentials and db', 'host:port,host:port'),
  REDIS_SENTINEL_MASTER: Str('^$|^\\S+$', 'the master group name the sentinels monitor', 'a name without spaces'),
  REDIS_SENTINEL_PASSWORD: Type.String({ default: '', description: 'password of the sentinels themselves, when they require one' }),
  REDIS_SENTINEL_TLS: Bool(false, 'connect to the sentinels over TLS too (with the REDIS_TLS_* files)'),
  REDIS_TLS_CA_FILE: Type.String({ default: '', description: 'PEM file of the CA that signed the Redis server certificates (rediss:// only)' }),
  REDIS_TLS_CERT_FILE: Type.String({ default: '', description: 'PEM client certificate, for servers that require one (with REDIS_TLS_KEY_FILE)' }),
  REDIS_TLS_KEY_FILE: Type.String({ default: '', description: 'PEM private key of REDIS_TLS_CERT_FILE' }),
  REDIS_TLS_SERVERNAME: Type.String({ default: '', description: 'the name the server certificate must carry, when it is not the host connected to' }),
  REDIS_TLS_SKIP_VERIFY: Bool(false, 'accept any Redis server certificate (Heroku Redis presents a self-signed one): encrypted but not authenticated; shown in the start line'),
  ALLOW_EVICTING_REDIS: Bool(false, 'start even when Redis maxmemory-policy is not noeviction (holds may be evicted; logged at error level)'),
  REDIS_READ_FROM: Type.Union([Type.Literal('primary'), Type.Literal('replica')], {
    default: 'primary', description: 'where GET /checkout/:id reads: the primary, or a replica (may be stale by the replication lag)'
  }),
  REDIS_REPLICA_URL: Str('^$|^rediss?://', 'standalone only: the replica (reader endpoint) GET /checkout/:id reads from with REDIS_READ_FROM=replica', 'a redis:// or rediss:// URL'),
  READ_CACHE: Bool(false, 'cache holds in the API process for GET /checkout/:id, kept coherent by Redis client-side caching (CLIENT TRACKING)'),
  READ_CACHE_MAX_ENTRIES: Int(1, 10_000_000, 100_000, 'holds the read cache keeps at most (least recently used go first)'),
  READ_CACHE_MAX_BYTES: Int(65_536, 17_179_869_184, 64 * 1024 * 1024, 'estimated memory the read cache may use; the least recently read holds go first'),
  READ_CACHE_MAX_AGE_MS: Int(50, 60_000, 1000, 'no read-cache entry is served older than this; hits also stop while the invalidation connection has not answered a PING for 1 s (or this, if shorter)'),
  REDIS_WAIT_REPLICAS: Int(0, 16, 0, 'after each API write, WAIT for this many replicas to have it; fewer answers 503. 0 turns it off'),
  REDIS_WAIT_TIMEOUT_MS: Int(1, 60_000, 200, 'how long an API write waits for REDIS_WAIT_REPLICAS'),
  LOG_LEVEL: Type.Union(
    ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)),
    { default: 'info', description: 'pino log level' }
  ),
  KEY_PREFIX: Type.String({
    pattern: '^[A-Za-z0-9._:-]{1,64}$',
    default: 'ce:',
    description: 'prefix of every key this service writes'
  }),
  KEY_SHARDS: Int(1, 1024, 16, 'number of index shards (hash tags); fixed for the life of the data'),
  KEY_FORMAT: Int(1, 3, 3, 'key format recorded for a new KEY_PREFIX: 3 packs pending holds into small buckets and spreads the shards evenly over Redis Cluster masters, 2 only spreads them, 1 is the format of earlier releases (docs/keys.md); data keeps the format it was recorded with'),
  CHECKOUT_DEFAULT_TTL_MS: Int(1000, 2_147_483_647, 15 * 60_000, 'hold time when a request gives none'),
  CHECKOUT_MAX_TTL_MS: Int(1000, 2_147_483_647, 24 * 3_600_000, 'longest hold a request may ask for'),
  CHECKOUT_RESULT_RETENTION_MS: Int(1000, 2_147_483_647, 24 * 3_600_000, 'how long an ended hold stays readable'),
  EXPIRY_HANDLERS: Type.String({ default: 'log', description: 'comma-separated built-in names or ES module paths' }),
  WEBHOOK_URL: Type.String({
    pattern: '^(https?://.+)?$',
    default: '',
    description: 'where the built-in webhook handler POSTs each expiry (http:// or https://, without user:password@)'
  }),
  WEBHOOK_SECRET: Type.String({
    default: '',
    description: 'HMAC-SHA256 key of the Checkout-Signature header; during a rotation two, comma-separated (old,new): one v1= each'
  }),
  WEBHOOK_TIMEOUT_MS: Int(100, 600_000, 5000, 'a webhook that has not answered within this fails the run'),
  EVENT_STREAM: Bool(false, 'record lifecycle events (created, extended, completed, cancelled, expired, dead) in the stream <KEY_PREFIX>events'),
  EVENT_STREAM_MAXLEN: Int(1000, 100_000_000, 100_000, 'approximate length the event stream is trimmed to'),
  EXPIRY_MAX_ATTEMPTS: Int(1, 1000, 5, 'handler runs before an order goes to the dead-letter set'),
  EXPIRY_BACKOFF_MS: Int(1, 3_600_000, 1000, 'first retry delay; doubles each attempt, with jitter'),
  EXPIRY_LEASE_MS: Int(500, 600_000, 3000, "how long a worker's shards and claims outlive its last heartbeat; then the other workers take them over"),
  EXPIRY_HEARTBEAT_MS: Int(20, 60_000, DEFAULT_HEARTBEAT_MS, 'how often a worker renews its heartbeat (one call, whatever KEY_SHARDS); at most a third of EXPIRY_LEASE_MS; by default 500, or a sixth of a shorter EXPIRY_LEASE_MS'),
  EXPIRY_HANDLER_TIMEOUT_MS: Int(100, 3_600_000, 60_000, 'a handler run longer than this counts as failed'),
  EXPIRY_CONCURRENCY: Int(1, 10_000, 256, 'handlers one worker runs at once (a slot frees when its handlers return, not when Redis has the outcome)'),
  EXPIRY_POLL_MS: Int(0, 600_000, 0, 'an optional safety net: how often a worker re-reads the next due time of each shard it owns; 0: never (scripts publish a new earliest one on <KEY_PREFIX>due at once)'),
  DEAD_LETTER_RETENTION_MS: Int(60_000, 3650 * 24 * 3_600_000, 30 * 24 * 3_600_000, 'dead letters older than this are removed by the worker'),
  WORKER_HTTP_PORT: Int(-1, 65535, 9091, 'worker port for /metrics, /healthz, /readyz; -1 turns it off, 0 picks a free port'),
  WORKER_HTTP_HOST: Type.String({ minLength: 1, default: '127.0.0.1', description: 'worker HTTP listen address' }),
  SHUTDOWN_TIMEOUT_MS: Int(100, 600_000, 10_000, 'graceful shutdown deadline')
})

export type Config = Static<typeof ConfigSchema>

export class ConfigError extends Error {
  override name = 'ConfigError'
}

function describeAllowed (schema: TSchema): string {
  if (schema.anyOf) return `one of ${schema.anyOf.map((s: TSchema) => s.const).join(', ')}`
  if (schema.type === 'boolean') return 'true or false'
  if (schema.type === 'integer') return `an integer from ${schema.minimum} to ${schema.maximum}`
  if (typeof schema.expected === 'string') return schema.expected
  if (schema.pattern) return `a string matching ${schema.pattern}`
  return 'a non-empty string'
}

/** Reads and validates the configuration; throws ConfigError naming the first bad variable. */
export function loadConfig (env: NodeJS.ProcessEnv = process.env): Config {
  const raw: Record<string, unknown> = {}
  for (const [name, schema] of Object.entries(ConfigSchema.properties)) {
    const value = env[name]
    if (value === undefined || value === '') continue
    if (schema.type === 'integer') {
      const n = /^-?\d+$/.test(value.trim()) ? Number(value) : Number.NaN
      raw[name] = Number.isFinite(n) ? n : value
    } else if (schema.type === 'boolean') {
      const v = value.trim().toLowerCase()
      raw[name] = v === 'true' || v === '1' ? true : v === 'false' || v === '0' ? false : value
    } else {
      raw[name] = value
    }
  }
  // A lease set shorter than the default heartbeat allows brings the heartbeat down with it (a sixth of the lease).
  if (raw.EXPIRY_HEARTBEAT_MS === undefined && typeof raw.EXPIRY_LEASE_MS === 'number' && raw.EXPIRY_LEASE_MS < 6 * DEFAULT_HEARTBEAT_MS) {
    raw.EXPIRY_HEARTBEAT_MS = Math.max(20, Math.floor(raw.EXPIRY_LEASE_MS / 6))
  }
  const withDefaults = Value.Default(ConfigSchema, raw)
  const first = Value.Errors(ConfigSchema, withDefaults).First()
  if (first) {
    const name = first.path.replace(/^\//, '')
    const schema = ConfigSchema.properties[name as keyof Config] as TSchema | undefined
    const allowed = schema ? describeAllowed(schema) : first.message
    throw new ConfigError(`Invalid ${name}${shown(name, env[name] ?? '')}: expected ${allowed}`)
  }
  const config = withDefaults as Config
  if (config.CHECKOUT_DEFAULT_TTL_MS > config.CHECKOUT_MAX_TTL_MS) {
    throw new ConfigError(
      `Invalid CHECKOUT_DEFAULT_TTL_MS=${config.CHECKOUT_DEFAULT_TTL_MS}: expected at most CHECKOUT_MAX_TTL_MS (${config.CHECKOUT_MAX_TTL_MS})`
    )
  }
  if (config.EXPIRY_HEARTBEAT_MS * 3 > config.EXPIRY_LEASE_MS) {
    throw new ConfigError(
      `Invalid EXPIRY_HEARTBEAT_MS=${config.EXPIRY_HEARTBEAT_MS}: expected at most a third of EXPIRY_LEASE_MS (${config.EXPIRY_LEASE_MS})`
    )
  }
  if (config.DASHBOARD && config.ADMIN_TOKENS.split(',').every((t) => t.trim() === '')) {
    throw new ConfigError('Invalid ADMIN_TOKENS: DASHBOARD=true needs at least one admin token (the /admin API is never open)')
  }
  checkRedisSettings(config)
  checkWebhookSettings(config)
  return config
}

/** Settings whose value is never printed, and URL settings printed without their credentials and query. */
const SECRETS = new Set(['API_TOKENS', 'ADMIN_TOKENS', 'WEBHOOK_SECRET', 'REDIS_SENTINEL_PASSWORD'])
const URLS = new Set(['REDIS_URL', 'REDIS_REPLICA_URL', 'WEBHOOK_URL'])

/** `="<value>"` for an error message: masked for a URL, left out for a secret. */
function shown (name: string, value: string): string {
  if (SECRETS.has(name)) return ''
  return `=${JSON.stringify(URLS.has(name) ? maskUrl(value) : value)}`
}

/** The Redis settings that only make sense together. */
function checkRedisSettings (config: Config): void {
  const target = parseRedisUrl(config.REDIS_URL)
  if (config.REDIS_REPLICA_URL) parseRedisUrl(config.REDIS_REPLICA_URL, 'REDIS_REPLICA_URL')
  const invalid = (name: keyof Config, why: string) =>
    new ConfigError(`Invalid ${name}${shown(name, String(config[name]))}: ${why}`)
  if (config.REDIS_CLUSTER_NODES && config.REDIS_SENTINELS) {
    throw invalid('REDIS_SENTINELS', 'set either REDIS_CLUSTER_NODES or REDIS_SENTINELS, not both')
  }
  if (config.REDIS_CLUSTER_NODES && target.db !== 0) {
    throw new ConfigError(`Invalid REDIS_URL: a Redis Cluster has only database 0, the URL names ${target.db}`)
  }
  if (config.REDIS_SENTINELS && !config.REDIS_SENTINEL_MASTER) {
    throw invalid('REDIS_SENTINEL_MASTER', 'expected the master group name the sentinels monitor (REDIS_SENTINELS is set)')
  }
  if (config.REDIS_NAT_MAP && !config.REDIS_CLUSTER_NODES && !config.REDIS_SENTINELS) {
    throw invalid('REDIS_NAT_MAP', 'only used with REDIS_CLUSTER_NODES or REDIS_SENTINELS')
  }
  for (const name of ['REDIS_TLS_CA_FILE', 'REDIS_TLS_CERT_FILE', 'REDIS_TLS_KEY_FILE', 'REDIS_TLS_SERVERNAME', 'REDIS_TLS_SKIP_VERIFY'] as const) {
    if (config[name] && !target.tls) throw invalid(name, 'TLS settings need a rediss:// REDIS_URL')
  }
  if (Boolean(config.REDIS_TLS_CERT_FILE) !== Boolean(config.REDIS_TLS_KEY_FILE)) {
    throw invalid(config.REDIS_TLS_CERT_FILE ? 'REDIS_TLS_KEY_FILE' : 'REDIS_TLS_CERT_FILE', 'a client certificate needs both REDIS_TLS_CERT_FILE and REDIS_TLS_KEY_FILE')
  }
  if (config.REDIS_REPLICA_URL && (config.REDIS_CLUSTER_NODES || config.REDIS_SENTINELS)) {
    throw invalid('REDIS_REPLICA_URL', 'only for a standalone primary: Sentinel and Cluster find their replicas themselves')
  }
  if (config.REDIS_READ_FROM === 'replica' && !config.REDIS_CLUSTER_NODES && !config.REDIS_SENTINELS && !config.REDIS_REPLICA_URL) {
    throw invalid('REDIS_READ_FROM', 'replica reads on a standalone primary need REDIS_REPLICA_URL (the reader endpoint)')
  }
  if (config.REDIS_WAIT_REPLICAS > 0 && config.REDIS_WAIT_TIMEOUT_MS >= config.REDIS_COMMAND_TIMEOUT_MS) {
    throw invalid('REDIS_WAIT_TIMEOUT_MS', `expected less than REDIS_COMMAND_TIMEOUT_MS (${config.REDIS_COMMAND_TIMEOUT_MS})`)
  }
}

/**
 * WEBHOOK_URL without credentials: fetch refuses a URL with user:password@
 * (every run would fail), and its error would carry the password into
 * lastError, the logs and the dead event. WEBHOOK_SECRET: one secret, or
 * two during a rotation.
 */
function checkWebhookSettings (config: Config): void {
  if (config.WEBHOOK_URL) {
    let url: URL
    try {
      url = new URL(config.WEBHOOK_URL)
    } catch {
      throw new ConfigError(`Invalid WEBHOOK_URL${shown('WEBHOOK_URL', config.WEBHOOK_URL)}: not a URL`)
    }
    if (hasCredentials(url)) {
      throw new ConfigError('Invalid WEBHOOK_URL: credentials in the URL (user:password@) are refused: they are never sent and ' +
        'would show in errors and logs. The receiver authenticates requests by their Checkout-Signature (WEBHOOK_SECRET)')
    }
  }
  const secrets = config.WEBHOOK_SECRET === '' ? [] : config.WEBHOOK_SECRET.split(',')
  if (secrets.length > 2 || new Set(secrets).size !== secrets.length || secrets.some((s) => !/^[^\s,]+$/.test(s))) {
    throw new ConfigError('Invalid WEBHOOK_SECRET: expected one secret, or two separated by a comma during a rotation ' +
      '(old,new; distinct, no spaces, no empty entry)')
  }
}

export interface HostPort {
  host: string
  port: number
}

/** `host:port,host:port` (REDIS_CLUSTER_NODES, REDIS_SENTINELS; already checked by the schema). */
export function parseHostPorts (value: string): HostPort[] {
  return value.split(',').filter(Boolean).map((pair) => {
    const at = pair.lastIndexOf(':')
    return { host: pair.slice(0, at), port: Number(pair.slice(at + 1)) }
  })
}

/** `announced:port=reachable:port,...` (REDIS_NAT_MAP) as ioredis' natMap. */
export function parseNatMap (value: string): Record<string, HostPort> {
  const map: Record<string, HostPort> = {}
  for (const pair of value.split(',').filter(Boolean)) {
    const [from = '', to = ''] = pair.split('=')
    const [target] = parseHostPorts(to)
    if (target) map[from] = target
  }
  return map
}

export interface RedisTarget {
  url: string
  db: number
  tls: boolean
}

/**
 * Validates REDIS_URL (or REDIS_REPLICA_URL) and extracts what the worker
 * needs to know (the db of its keyspace events). The messages never echo the
 * URL: a malformed one may hold its password anywhere.
 */
export function parseRedisUrl (url: string, name: 'REDIS_URL' | 'REDIS_REPLICA_URL' = 'REDIS_URL'): RedisTarget {
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    throw new ConfigError(`Invalid ${name}: not a URL (expected redis://[user:password@]host:port/db)`)
  }
  if (!parsed.hostname) throw new ConfigError(`Invalid ${name}: missing host`)
  const dbPart = parsed.pathname.replace(/^\//, '')
  if (dbPart !== '' && !/^\d+$/.test(dbPart)) {
    // A short word is safe to show; anything else may be a misplaced password.
    const what = /^[\w.-]{1,20}$/.test(dbPart) ? `database "${dbPart}"` : 'the path after the host'
    throw new ConfigError(`Invalid ${name}: ${what} is not a number`)
  }
  return { url, db: dbPart === '' ? 0 : Number(dbPart), tls: parsed.protocol === 'rediss:' }
}
