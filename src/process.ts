import closeWithGrace from 'close-with-grace'
import type { Logger } from 'pino'
import { ConfigError, loadConfig, type Config } from './config.js'
import { LayoutMismatchError } from './store/layout.js'

/**
 * Shared by the process entry points: config that stops the process with one
 * clear line, and the one place that handles signals.
 */
export function loadConfigOrExit (): Config {
  try {
    return loadConfig()
  } catch (err) {
    return exitIfMisconfigured(err)
  }
}

/** A setting that does not fit (the config, or the data in Redis) stops the process with one line; anything else is rethrown. */
export function exitIfMisconfigured (err: unknown): never {
  if (err instanceof ConfigError || err instanceof LayoutMismatchError) {
    process.stderr.write(`checkout-expiry: ${err.message}\n`)
    process.exit(1)
  }
  throw err
}

/** Why the process stops: a signal (SIGTERM, SIGINT), or a crash (an uncaught exception or unhandled rejection). */
export type ShutdownCause = 'signal' | 'crash'

/**
 * SIGTERM/SIGINT and uncaught errors close the process within the deadline;
 * a second signal exits at once. `close` is told which: a crash is not a
 * signal (the worker then counts the attempts that were running).
 */
export function onShutdown (log: Logger, delayMs: number, close: (cause: ShutdownCause) => Promise<void>): void {
  closeWithGrace({ delay: delayMs, logger: log }, async ({ signal, err }) => {
    if (err) log.error({ err }, 'shutting down after an error')
    else log.info({ signal }, 'shutting down')
    await close(err ? 'crash' : 'signal')
  })
}
