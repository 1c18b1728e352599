import { randomUUID } from 'node:crypto'
import { Cluster, type Redis } from 'ioredis'
import { waitUntilReady, type Log, type RedisClient } from './connection.js'

/**
 * Whether the Redis we are pointed at is fit for holds: it must not evict
 * them, and should publish expired events and pass pub/sub (a proxy or a
 * serverless Redis may not). Each check is a finding with the fix;
 * `ok: undefined` when it could not be checked (CONFIG refused, as on
 * ElastiCache and Heroku Redis), with how to make sure by hand.
 */
export interface Finding {
  check: 'maxmemory-policy' | 'keyspace-events' | 'pubsub'
  ok: boolean | undefined
  detail: string
  fix?: string
}

const message = (err: unknown) => err instanceof Error ? err.message : String(err)

async function configGet (redis: RedisClient, name: string): Promise<string> {
  const reply = await redis.config('GET', name) as unknown as string[]
  return reply[1] ?? ''
}

/** noeviction, or volatile-*: keys without a TTL are never evicted. allkeys-* evicts anything, holds included. */
export async function checkEvictionPolicy (redis: RedisClient): Promise<Finding> {
  const fix = 'set maxmemory-policy noeviction (redis.conf or CONFIG SET; ElastiCache: the parameter group; Heroku: heroku redis:maxmemory --policy noeviction)'
  let policy: string
  try {
    policy = await configGet(redis, 'maxmemory-policy')
  } catch (err) {
    return { check: 'maxmemory-policy', ok: undefined, detail: `could not read maxmemory-policy (${message(err)})`, fix: `make sure of it: ${fix}` }
  }
  if (policy === 'noeviction' || policy.startsWith('volatile-')) return { check: 'maxmemory-policy', ok: true, detail: `maxmemory-policy ${policy}` }
  return { check: 'maxmemory-policy', ok: false, detail: `maxmemory-policy ${policy} evicts any key when memory runs out: holds vanish without an expiry`, fix }
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
