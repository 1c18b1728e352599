import fp from 'fastify-plugin'
import { closeRedis, createRedis, waitUntilReady, type RedisClient } from '../redis/connection.js'

declare module 'fastify' {
  interface FastifyInstance {
    redis: RedisClient
  }
}

export interface RedisPluginOptions {
  url: string
  commandTimeoutMs: number
  /** A connection made by the caller (tests, a Lambda handler); it is not closed here. */
  client?: RedisClient | undefined
}

/** The API's Redis connection. Closes only a connection it created. */
export default fp<RedisPluginOptions>(async (app, opts) => {
  const owned = opts.client === undefined
  const redis = opts.client ?? createRedis({
    url: opts.url, role: 'api', log: app.log, commandTimeoutMs: opts.commandTimeoutMs
  })
  app.decorate<RedisClient>('redis', redis)
  // Serve once Redis answers; if it does not within the connect timeout, start
  // anyway: requests get 503 until the connection comes back by itself.
  if (!(await waitUntilReady(redis, 5000))) app.log.warn('redis is not reachable yet; answering 503 until it is')
  app.addHook('onClose', async () => {
    if (owned) await closeRedis(redis)
  })
}, { name: 'redis' })
