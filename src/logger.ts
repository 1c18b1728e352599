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

/**
 * stdout for a process that writes a line per request (the API): lines
 * logged while a write is in flight go out together in the next write,
 * instead of one blocking write each. pino writes what is left when the
 * process exits, a crash included; only a SIGKILL can lose lines (those
 * logged after the last write began). Undefined on a terminal (createLogger then
 * pretty-prints).
 */
export function bufferedStdout (): DestinationStream | undefined {
  return process.stdout.isTTY === true ? undefined : pino.destination({ dest: 1, sync: false })
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
