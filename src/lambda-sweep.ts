import { loadConfig } from './config.js'
import type { KeyFormat } from './keys.js'
import { builtInSettings } from './expiry/handler-settings.js'
import { loadHandlers } from './expiry/handlers.js'
import { sweepOnce, type SweepReport } from './expiry/sweep-once.js'
import { createLogger } from './logger.js'
import { createWorkerMetrics } from './metrics/worker-metrics.js'
import { closeRedis, waitUntilReady } from './redis/connection.js'
import { redisDeployment } from './redis/deployment.js'
import { createRedisClient } from './redis/factory.js'
import { connectOrRefuse } from './redis/startup.js'
import { createStoreContext } from './store/context.js'
import { openKeyspace } from './store/layout.js'

/**
 * The expiry sweep on AWS Lambda, run by an EventBridge Scheduler rule
 * (every minute): each invocation claims and runs what is due
 * (src/expiry/sweep-once.ts) within the invocation's time. The fallback
 * where no worker runs: a frozen function can hold no subscription or
 * heartbeat between invocations, so expiries run up to a minute late
 * (docs/deploy.md). Connection, handlers and key layout are made once per
 * execution environment, during init.
 */
const config = loadConfig()
const log = createLogger(config.LOG_LEVEL, 'expiry-sweep')
const deployment = redisDeployment(config)
const redis = createRedisClient(deployment, 'worker', { log, lambda: true, name: 'checkout-expiry:sweep-lambda' })
await connectOrRefuse(redis, deployment.describe, config.REDIS_CONNECT_TIMEOUT_MS)
const handlers = await loadHandlers(config.EXPIRY_HANDLERS, builtInSettings(config, redis))
const keys = await openKeyspace(redis, config.KEY_PREFIX, config.KEY_SHARDS, log, config.KEY_FORMAT as KeyFormat)
const store = createStoreContext(redis, keys, config.CHECKOUT_RESULT_RETENTION_MS, {
  events: config.EVENT_STREAM ? { maxLen: config.EVENT_STREAM_MAXLEN } : undefined
})
const metrics = createWorkerMetrics()

export interface LambdaContext {
  getRemainingTimeInMillis: () => number
}

export async function handler (_event: unknown, context: LambdaContext): Promise<SweepReport> {
  // A failed invocation is retried by the scheduler; the next minute's runs anyway.
  if (!await waitUntilReady(redis, config.REDIS_CONNECT_TIMEOUT_MS)) throw new Error(`Redis (${deployment.describe}) did not answer`)
  return await sweepOnce({ config, store, handlers, log, metrics, remainingMs: () => context.getRemainingTimeInMillis() })
}

/** Closes the connection: for a process that embeds the handler (tests, a local runner), never called on Lambda. */
export async function close (): Promise<void> {
  await closeRedis(redis)
}
