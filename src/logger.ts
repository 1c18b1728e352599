import { pino, type DestinationStream, type Logger } from 'pino'

/**
 * What never reaches a log line: credentials, and order payloads and request
 * bodies, which can hold personal data (log ids and sizes instead).
 */
export const REDACTED_PATHS = [
  'req.headers.authorization', '*.headers.authorization', 'headers.authorization',
  'config.REDIS_URL', 'config.API_TOKENS', 'config.WEBHOOK_SECRET', '*.password',
  'payload', '*.payload', 'body', 'req.body'
]

/** Set by the bundler (scripts/bundle.mjs): a bundle cannot start pino's transport thread, so it logs JSON. */
declare const BUNDLED: boolean | undefined
const canPrettyPrint = typeof BUNDLED === 'undefined'

/**
 * Structured JSON logs; readable ones (pino-pretty) only when a person is
 * watching a terminal.
 */
export function createLogger (level: string, name: string, destination?: DestinationStream): Logger {
  const pretty = canPrettyPrint && destination === undefined && process.stdout.isTTY === true
  const options = {
    name,
    level,
    redact: REDACTED_PATHS,
    ...(pretty ? { transport: { target: 'pino-pretty', options: { translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' } } } : {})
  }
  return destination === undefined ? pino(options) : pino(options, destination)
}

/** For log lines: the REDIS_URL without its password. */
export function redactUrl (url: string): string {
  try {
    const u = new URL(url)
    if (u.password) u.password = '***'
    return u.toString()
  } catch {
    return '<invalid url>'
  }
}
