import { loadHandlers } from '../src/expiry/handlers.js'
import { builtInSettings } from '../src/expiry/handler-settings.js'
import { createKeyspace } from '../src/keys.js'
import { startExpiryWorker } from '../src/expiry/worker.js'
import { createLogger } from '../src/logger.js'
import { createWorkerMetrics } from '../src/metrics/worker-metrics.js'
import { exitIfMisconfigured, loadConfigOrExit, onShutdown } from '../src/process.js'
import { redisDeployment } from '../src/redis/deployment.js'
import { createWorkerConnections } from '../src/redis/factory.js'
import { checkPubSub, checkServer, refuseEvictingRedis, reportFindings } from '../src/redis/fitness.js'
import { connectOrRefuse } from '../src/redis/startup.js'

/** The expiry worker process: turns expired holds into handler calls. */
const config = loadConfigOrExit()
const log = createLogger(config.LOG_LEVEL, 'expiry-worker')

let deployment
try {
  deployment = redisDeployment(config)
} catch (err) {
  exitIfMisconfigured(err)
}
const target = deployment
const { redis, subscriber, connectNode } = createWorkerConnections(target, { log })
// A certificate or password Redis refuses does not pass by waiting: stop with one line.
connectOrRefuse(redis, target.describe).catch((err: unknown) => {
  redis.disconnect()
  subscriber?.disconnect()
  exitIfMisconfigured(err)
})

let handlers
try {
  handlers = await loadHandlers(config.EXPIRY_HANDLERS, builtInSettings(config, redis))
} catch (err) {
  process.stderr.write(`checkout-expiry: ${err instanceof Error ? err.message : String(err)}\n`)
  redis.disconnect()
  subscriber?.disconnect()
  process.exit(1)
}

// Before claiming anything: a Redis that may evict holds is refused unless allowed (docs/deploy.md, "Is this Redis fit").
const findings = await checkServer(redis)
reportFindings(log, findings)
try {
  refuseEvictingRedis(findings, config.ALLOW_EVICTING_REDIS)
} catch (err) {
  redis.disconnect()
  subscriber?.disconnect()
  exitIfMisconfigured(err)
}

const metrics = createWorkerMetrics()
// A port that is taken stops the worker with one line, like any other bad setting.
const http = config.WORKER_HTTP_PORT === -1 ? undefined : { port: config.WORKER_HTTP_PORT, host: config.WORKER_HTTP_HOST }
const worker = await startExpiryWorker({ config, redis, subscriber, connectNode, handlers, log, metrics, http }).catch(exitIfMisconfigured)
log.info({ redis: target.describe, handlers: handlers.map((h) => h.name), httpPort: worker.httpPort, token: worker.token }, 'expiry worker ready')
// Whether pub/sub passes, one line (the keyspace events were reported above).
void checkPubSub(redis, createKeyspace(config.KEY_PREFIX, config.KEY_SHARDS).dueChannel).then((finding) => reportFindings(log, [finding]))

// Leave close-with-grace a little time after the handlers' deadline to close connections.
onShutdown(log, config.SHUTDOWN_TIMEOUT_MS + 1000, async (cause) => {
  await worker.close(config.SHUTDOWN_TIMEOUT_MS, cause)
})
