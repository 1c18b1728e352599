import { buildApp } from './app.js'
import { createLogger, redactUrl } from './logger.js'
import { exitIfMisconfigured, loadConfigOrExit, onShutdown } from './process.js'

/** The API process: config, logger, listen, graceful shutdown. */
const config = loadConfigOrExit()
const log = createLogger(config.LOG_LEVEL, 'checkout-api')
const app = await buildApp({ config, logger: log }).catch(exitIfMisconfigured)

try {
  await app.listen({ port: config.PORT, host: config.HOST })
} catch (err) {
  log.fatal({ err }, 'could not start the API')
  await app.close().catch(() => {})
  process.exit(1)
}

onShutdown(log, config.SHUTDOWN_TIMEOUT_MS, async () => {
  await app.close()
})
log.info({ redis: redactUrl(config.REDIS_URL) }, 'checkout API ready')
