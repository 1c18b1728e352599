import { pino, type Logger } from 'pino'

/**
 * Structured JSON logs; readable ones (pino-pretty) only when a person is
 * watching a terminal. Secrets never reach the log.
 */
export function createLogger (level: string, name: string): Logger {
  const pretty = process.stdout.isTTY === true
  return pino({
    name,
    level,
    redact: ['req.headers.authorization', 'config.REDIS_URL', '*.password'],
    ...(pretty ? { transport: { target: 'pino-pretty', options: { translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' } } } : {})
  })
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
