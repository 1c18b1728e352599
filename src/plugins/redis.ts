import fp from 'fastify-plugin'
import type { Config } from '../config.js'
import { closeRedis, type RedisClient } from '../redis/connection.js'
import { redisDeployment } from '../redis/deployment.js'
import { createRedisClient } from '../redis/factory.js'
import { connectOrRefuse } from '../redis/startup.js'

declare module 'fastify' {
  interface FastifyInstance {
    redis: RedisClient
  }
}

export interface RedisPluginOptions {
  /** The connection follows the whole configuration: Sentinel, Cluster, TLS files, timeouts. */
  config: Config
  /** A connection made by the caller (the API process, tests, a Lambda handler); it is not closed here. */
  client?: RedisClient | undefined
}

/** How long the API waits for Redis at start before serving 503s until it answers. */
const STARTUP_WAIT_MS = 5000

/** The API's Redis connection. Closes only a connection it created. */
export default fp<RedisPluginOptions>(async (app, opts) => {
  const owned = opts.client === undefined
  const deployment = redisDeployment(opts.config)
  const redis = opts.client ?? createRedisClient(deployment, 'api', { log: app.log })
  // Serve once Redis answers; if it does not within the wait, start anyway:
  // requests get 503 until the connection comes back by itself. A certificate
  // or password Redis refuses does not pass by itself: buildApp rejects.
  let ready: boolean
  try {
    ready = await connectOrRefuse(redis, deployment.describe, STARTUP_WAIT_MS)
  } catch (err) {
    if (owned) await closeRedis(redis)
    throw err
  }
  if (!ready) app.log.warn('redis is not reachable yet; answering 503 until it is')
  app.decorate<RedisClient>('redis', redis)
  app.addHook('onClose', async () => {
    if (owned) await closeRedis(redis)
  })
}, { name: 'redis' })
