import fp from 'fastify-plugin'
import type { Redis } from 'ioredis'
import { closeRedis, createRedis } from '../redis/connection.js'

declare module 'fastify' {
  interface FastifyInstance {
    redis: Redis
  }
}

export interface RedisPluginOptions {
  url: string
  commandTimeoutMs: number
  /** A connection made by the caller (tests, a Lambda handler); it is not closed here. */
  client?: Redis | undefined
}

/** The API's Redis connection. Closes only a connection it created. */
export default fp<RedisPluginOptions>(async (app, opts) => {
  const owned = opts.client === undefined
  const redis = opts.client ?? createRedis({
    url: opts.url, role: 'api', log: app.log, commandTimeoutMs: opts.commandTimeoutMs
  })
  app.decorate('redis', redis)
  app.addHook('onClose', async () => {
    if (owned) await closeRedis(redis)
  })
}, { name: 'redis' })
