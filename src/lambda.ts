import awsLambdaFastify, { type LambdaResponse } from '@fastify/aws-lambda'
import { buildApp } from './app.js'
import { ConfigError, loadConfig } from './config.js'
import { createLogger } from './logger.js'
import { closeRedis, waitUntilReady } from './redis/connection.js'
import { redisDeployment } from './redis/deployment.js'
import { createRedisClient } from './redis/factory.js'

/**
 * The API on AWS Lambda, behind API Gateway (REST v1 or HTTP API v2) or an
 * ALB: the app of src/server.ts, built once per execution environment during
 * init and reused by every warm invocation. Its Redis connection carries the
 * Lambda settings (lambdaOptions in src/redis/options.ts: connected here in
 * init, no offline queue, one retry, command and socket timeouts, keep-alive,
 * reconnect on READONLY) and is never closed: Lambda sends no SIGTERM without
 * an extension, and the connection ends with the environment.
 */
const config = loadConfig()
if (config.READ_CACHE) {
  // A frozen process reads no invalidations: every thaw would start with a cache it cannot trust.
  throw new ConfigError('Invalid READ_CACHE=true: the read cache is not for AWS Lambda (a frozen function misses invalidations); leave it off')
}
const log = createLogger(config.LOG_LEVEL, 'checkout-api')
const redis = createRedisClient(redisDeployment(config), 'api', { log, lambda: true, name: 'checkout-expiry:api-lambda' })
// buildApp waits for the first connection (or starts anyway, answering 503 until Redis answers).
const app = await buildApp({ config, logger: log, redis })
const proxy = awsLambdaFastify(app, { decorateRequest: false })
await app.ready()

export async function handler (event: unknown, context: Parameters<typeof proxy>[1]): Promise<LambdaResponse> {
  // Thawed with a connection that is being made again (its socket timed out, or the NAT reset it):
  // wait for it no longer than a command may take, then answer, 503 if Redis is still away.
  if (redis.status !== 'ready') await waitUntilReady(redis, config.REDIS_COMMAND_TIMEOUT_MS)
  return await proxy(event, context)
}

/** Closes the app and its connection: for a process that embeds the handler (tests, a local runner), never called on Lambda. */
export async function close (): Promise<void> {
  await app.close()
  await closeRedis(redis)
}
