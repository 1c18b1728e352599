import { randomUUID } from 'node:crypto'
import { Cluster, type Redis } from 'ioredis'
import { ConfigError } from '../config.js'
import { waitUntilReady, type Log, type RedisClient } from './connection.js'

/**
 * Whether the Redis we are pointed at is fit for holds: it must not evict
 * them, and should publish expired events and pass pub/sub (a proxy or a
 * serverless Redis may not). Each check is a finding with the fix;
 * `ok: undefined` when it could not be checked (CONFIG refused, as on
 * ElastiCache and Heroku Redis), with how to make sure by hand.
 */
export interface Finding {
  check: 'maxmemory-policy' | 'keyspace-events' | 'pubsub' | 'persistence' | 'version' | 'cluster-slots'
  ok: boolean | undefined
  detail: string
  fix?: string
}

const message = (err: unknown) => err instanceof Error ? err.message : String(err)

async function configGet (redis: RedisClient, name: string): Promise<string> {
  const reply = await redis.config('GET', name) as unknown as string[]
  return reply[1] ?? ''
}

/** Only noeviction: volatile-* evicts keys with a TTL, and every hold has one; allkeys-* evicts anything. */
export async function checkEvictionPolicy (redis: RedisClient): Promise<Finding> {
  const fix = 'set maxmemory-policy noeviction (redis.conf or CONFIG SET; ElastiCache: the parameter group; Heroku: heroku redis:maxmemory --policy noeviction)'
  let policy: string
  try {
    policy = await configGet(redis, 'maxmemory-policy')
  } catch (err) {
    return { check: 'maxmemory-policy', ok: undefined, detail: `could not read maxmemory-policy (${message(err)})`, fix: `make sure of it: ${fix}` }
  }
  if (policy === 'noeviction') return { check: 'maxmemory-policy', ok: true, detail: `maxmemory-policy ${policy}` }
  return { check: 'maxmemory-policy', ok: false, detail: `maxmemory-policy ${policy} evicts keys when memory runs out: holds vanish without an expiry`, fix }
}

/** Without an append-only file and without RDB snapshots, a restart starts empty. */
export async function checkPersistence (redis: RedisClient): Promise<Finding> {
  const fix = 'turn on appendonly yes (or RDB snapshots with save); ElastiCache: a replica with Multi-AZ failover, or data tiering/backups'
  let appendonly: string, save: string
  try {
    [appendonly, save] = await Promise.all([configGet(redis, 'appendonly'), configGet(redis, 'save')])
  } catch (err) {
    return { check: 'persistence', ok: undefined, detail: `could not read appendonly and save (${message(err)})`, fix: `make sure of it: ${fix}` }
  }
  if (appendonly === 'no' && save.trim() === '') {
    return { check: 'persistence', ok: false, detail: 'appendonly no and save "": a restart of Redis loses every hold', fix }
  }
  return { check: 'persistence', ok: true, detail: `appendonly ${appendonly}, save "${save}"` }
}

/** Redis 7.0 is the oldest release the service is tested on. */
export function versionFinding (version: string): Finding {
  const major = Number.parseInt(version.split('.')[0] ?? '', 10)
  if (Number.isNaN(major)) return { check: 'version', ok: undefined, detail: `could not read the version ("${version}")` }
  if (major >= 7) return { check: 'version', ok: true, detail: `redis_version ${version}` }
  return { check: 'version', ok: false, detail: `redis_version ${version} is older than 7.0, the oldest we test on`, fix: 'upgrade Redis (or Valkey) to 7.0 or later' }
}

export async function checkVersion (redis: RedisClient): Promise<Finding> {
  try {
    const info = await redis.info('server')
    return versionFinding(/^redis_version:(\S+)/m.exec(info)?.[1] ?? '')
  } catch (err) {
    return { check: 'version', ok: undefined, detail: `could not read INFO server (${message(err)})`, fix: 'allow INFO to the service\'s ACL user' }
  }
}

/** On a cluster (cluster_enabled:1), every one of the 16384 slots served; undefined elsewhere (no finding). */
export async function checkClusterSlots (redis: RedisClient): Promise<Finding | undefined> {
  try {
    if (!/^cluster_enabled:1/m.test(await redis.info('cluster'))) return undefined
    const info = await redis.cluster('INFO') as unknown as string
    const field = (name: string) => new RegExp(`^${name}:(\\S+)`, 'm').exec(info)?.[1] ?? ''
    const slotsOk = Number(field('cluster_slots_ok'))
    const state = field('cluster_state')
    if (slotsOk === 16384 && state === 'ok') return { check: 'cluster-slots', ok: true, detail: 'all 16384 slots are served, cluster_state ok' }
    return {
      check: 'cluster-slots',
      ok: false,
      detail: `${slotsOk} of 16384 slots are served (cluster_state ${state}): orders whose hash tag falls in the others cannot be held or expired`,
      fix: 'assign every slot to a master (redis-cli --cluster fix), and keep a replica for each master'
    }
  } catch (err) {
    return { check: 'cluster-slots', ok: undefined, detail: `could not read CLUSTER INFO (${message(err)})`, fix: 'allow INFO and CLUSTER INFO to the service\'s ACL user' }
  }
}

/** The checks the API and the worker run before they serve; the worker and checkoutctl doctor add pub/sub and keyspace events. */
export async function checkServer (redis: RedisClient): Promise<Finding[]> {
  const [policy, persistence, version, slots] = await Promise.all([
    checkEvictionPolicy(redis), checkPersistence(redis), checkVersion(redis), checkClusterSlots(redis)
  ])
  return slots === undefined ? [policy, persistence, version] : [policy, persistence, version, slots]
}

/**
 * An evicting Redis is refused (a ConfigError: one line and exit code 1)
 * unless ALLOW_EVICTING_REDIS=true; a policy that could not be read is not.
 */
export function refuseEvictingRedis (findings: Finding[], allowed: boolean): void {
  const policy = findings.find((f) => f.check === 'maxmemory-policy')
  if (policy?.ok !== false || allowed) return
  throw new ConfigError(`${policy.detail}. Fix: ${policy.fix ?? ''}; or set ALLOW_EVICTING_REDIS=true to start anyway`)
}

/** notify-keyspace-events includes E and x (or A). */
export async function checkKeyspaceEvents (redis: RedisClient): Promise<Finding> {
  const fix = 'set notify-keyspace-events Ex (the worker does it itself where CONFIG SET is allowed; ElastiCache: the parameter group; ' +
    'Heroku: heroku redis:keyspace-notifications -c Ex); expiries are on time without the events, which only add a second trigger'
  let flags: string
  try {
    flags = await configGet(redis, 'notify-keyspace-events')
  } catch (err) {
    return { check: 'keyspace-events', ok: undefined, detail: `could not read notify-keyspace-events (${message(err)})`, fix }
  }
  const on = flags.includes('E') && (flags.includes('x') || flags.includes('A'))
  return on ? { check: 'keyspace-events', ok: true, detail: `notify-keyspace-events ${flags}` } : { check: 'keyspace-events', ok: false, detail: `notify-keyspace-events "${flags}" publishes no expired events`, fix }
}

/**
 * Publishes a probe on `channel` and waits for it on a connection of its
 * own. The channel is the service's `<prefix>due`, which both ACL users may
 * use and where the worker ignores a message it cannot read.
 */
export async function checkPubSub (redis: RedisClient, channel: string, timeoutMs = 1000): Promise<Finding> {
  const probe = `fitness-probe:${randomUUID()}`
  // A Cluster's duplicate is a Cluster; both subscribe and publish the same way (a cluster broadcasts PUBLISH).
  const listener = redis instanceof Cluster ? redis.duplicate() as unknown as Redis : redis.duplicate()
  listener.on('error', () => {})
  let timer: NodeJS.Timeout | undefined
  try {
    const heard = new Promise<boolean>((resolve) => {
      listener.on('message', (ch: string, msg: string) => { if (ch === channel && msg === probe) resolve(true) })
      timer = setTimeout(() => resolve(false), timeoutMs)
    })
    // The connection may fail fast while it connects (no offline queue, as the API's and checkoutctl's).
    if (!await waitUntilReady(listener, timeoutMs)) throw new Error(`no connection within ${timeoutMs} ms`)
    await listener.subscribe(channel)
    await redis.publish(channel, probe)
    if (await heard) return { check: 'pubsub', ok: true, detail: 'a message published was received' }
    return {
      check: 'pubsub',
      ok: false,
      detail: `a message published on ${channel} did not arrive within ${timeoutMs} ms: pub/sub does not pass (a proxy, or a serverless Redis)`,
      fix: 'connect to Redis directly, not through a proxy that drops pub/sub; the sweeper alone then finds expiries, a new earliest deadline only at the next EXPIRY_POLL_MS'
    }
  } catch (err) {
    return { check: 'pubsub', ok: false, detail: `pub/sub refused (${message(err)})`, fix: 'allow SUBSCRIBE and PUBLISH on <KEY_PREFIX>due (docs/deploy.md, ACL rules)' }
  } finally {
    clearTimeout(timer)
    listener.disconnect()
  }
}

/** One line per finding: error when a hold can be lost, warn when a check failed or could not run. */
export function reportFindings (log: Log, findings: Finding[]): void {
  for (const f of findings) {
    const line = { check: f.check, detail: f.detail, ...(f.fix ? { fix: f.fix } : {}) }
    if (f.ok === true) log.info(line, `redis fitness: ${f.check} ok`)
    else if (f.ok === false && f.check === 'maxmemory-policy') log.error(line, 'redis fitness: REDIS MAY EVICT HOLDS')
    else log.warn(line, f.ok === false ? `redis fitness: ${f.check} not fit` : `redis fitness: ${f.check} could not be checked`)
  }
}
