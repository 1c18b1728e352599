import { ConfigError, loadConfig, type Config } from '../config.js'
import { createKeyspace, type KeyFormat } from '../keys.js'
import { closeRedis, type RedisClient } from '../redis/connection.js'
import { redisDeployment, type RedisDeployment } from '../redis/deployment.js'
import { createRedisClient } from '../redis/factory.js'
import { createStoreContext, type StoreContext } from '../store/context.js'
import { LayoutMismatchError, openKeyspace } from '../store/layout.js'
import { CliErrors } from './errors.js'

/**
 * One command's connection to the data: the same configuration, connection
 * factory and store context as the API and the worker. A command that writes
 * checks the key layout first with checkLayout, exactly as they do at start
 * (recording it when there is none yet); a read-only command checks it when
 * there is one and otherwise only warns, so a mistyped KEY_PREFIX leaves no
 * trace in Redis.
 */
export interface Session {
  config: Config
  /** Where Redis is, for messages: never the credentials of REDIS_URL. */
  where: string
  store: StoreContext
  close: () => Promise<void>
}

/** Long enough for a Redis that is loading its data; a refused connection fails at once. */
const CONNECT_TIMEOUT_MS = 5000

/** Resolves when the connection is ready; rejects with the first connection error or after the timeout. */
async function connected (redis: RedisClient, timeoutMs: number): Promise<void> {
  if (redis.status === 'ready') return
  await new Promise<void>((resolve, reject) => {
    const done = (err?: Error) => {
      clearTimeout(timer)
      redis.off('ready', onReady)
      redis.off('error', onError)
      if (err) reject(err)
      else resolve()
    }
    const onReady = () => done()
    const onError = (err: Error) => done(err)
    const timer = setTimeout(() => done(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs)
    redis.on('ready', onReady)
    redis.on('error', onError)
  })
}

export async function openSession (
  env: NodeJS.ProcessEnv, opts: { writes: boolean, warn: (message: string) => void }
): Promise<Session> {
  let config: Config
  let deployment: RedisDeployment
  try {
    config = loadConfig(env)
    deployment = redisDeployment(config)
  } catch (err) {
    if (err instanceof ConfigError) throw CliErrors.config(err.message)
    throw err
  }
  const url = deployment.describe
  const redis = createRedisClient(deployment, 'api', { name: 'checkout-expiry:cli' })
  try {
    await connected(redis, CONNECT_TIMEOUT_MS)
  } catch (err) {
    await closeRedis(redis)
    throw CliErrors.redisUnavailable(url, err instanceof Error ? err.message : String(err))
  }
  const store = createStoreContext(redis, createKeyspace(config.KEY_PREFIX, config.KEY_SHARDS, config.KEY_FORMAT as KeyFormat),
    config.CHECKOUT_RESULT_RETENTION_MS)
  const session = { config, where: url, store, close: async () => await closeRedis(redis) }
  try {
    if (opts.writes || await redis.exists(`${config.KEY_PREFIX}layout`) === 1) {
      // The recorded key format (a new prefix gets KEY_FORMAT, as the API and the worker record it).
      store.keys = await openKeyspace(redis, config.KEY_PREFIX, config.KEY_SHARDS, { warn: (message: string) => opts.warn(message) },
        config.KEY_FORMAT as KeyFormat)
    } else {
      opts.warn(`nothing is stored under KEY_PREFIX=${config.KEY_PREFIX} on ${url} (no layout record); check KEY_PREFIX and REDIS_URL`)
    }
  } catch (err) {
    await session.close()
    if (err instanceof LayoutMismatchError) throw CliErrors.layoutMismatch(err.message)
    throw err
  }
  return session
}
