import { buildApp } from './app.js'
import { bufferedStdout, createLogger } from './logger.js'
import { exitIfMisconfigured, loadConfigOrExit, onShutdown } from './process.js'
import { closeRedis } from './redis/connection.js'
import { redisDeployment } from './redis/deployment.js'
import { createRedisClient } from './redis/factory.js'
import { checkServer, refuseEvictingRedis, reportFindings } from './redis/fitness.js'

/** The API process: config, logger, Redis (any topology), listen, graceful shutdown. */
const config = loadConfigOrExit()
const log = createLogger(config.LOG_LEVEL, 'checkout-api', bufferedStdout())
let deployment
try {
  deployment = redisDeployment(config)
} catch (err) {
  exitIfMisconfigured(err)
}
// Built here from the whole configuration (Sentinel, Cluster, TLS files) and
// handed to the app, which leaves closing it to us.
const redis = createRedisClient(deployment, 'api', { log })
const app = await buildApp({ config, logger: log, redis }).catch(async (err: unknown) => {
  await closeRedis(redis)
  return exitIfMisconfigured(err)
})

// Before serving: a Redis that may evict holds is refused unless allowed (docs/deploy.md, "Is this Redis fit").
const findings = await checkServer(redis)
reportFindings(log, findings)
try {
  refuseEvictingRedis(findings, config.ALLOW_EVICTING_REDIS)
} catch (err) {
  await app.close().catch(() => {})
  await closeRedis(redis)
  exitIfMisconfigured(err)
}

try {
  await app.listen({ port: config.PORT, host: config.HOST })
} catch (err) {
  log.fatal({ err }, 'could not start the API')
  await app.close().catch(() => {})
  await closeRedis(redis)
  process.exit(1)
}

onShutdown(log, config.SHUTDOWN_TIMEOUT_MS, async () => {
  await app.close()
  await closeRedis(redis)
})
log.info({ redis: deployment.describe }, 'checkout API ready')
