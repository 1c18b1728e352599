/**
 * Every way a checkoutctl command fails, each with a stable code (what a
 * script matches on in `--json` output) and its exit code: 2 for a usage
 * error, 1 for everything that went wrong while running.
 */
export type CliErrorCode = 'USAGE' | 'CONFIG' | 'REDIS_UNAVAILABLE' | 'LAYOUT_MISMATCH' | 'NOT_FOUND' | 'REFUSED' | 'INTERNAL'

export class CliError extends Error {
  override name = 'CliError'
  constructor (readonly code: CliErrorCode, message: string, readonly exitCode: 1 | 2, options?: ErrorOptions) {
    super(message, options)
  }
}

export const CliErrors = {
  usage: (message: string) => new CliError('USAGE', message, 2),
  config: (message: string) => new CliError('CONFIG', message, 1),
  redisUnavailable: (url: string, reason: string) =>
    new CliError('REDIS_UNAVAILABLE', `Redis at ${url} is unavailable: ${reason}`, 1),
  layoutMismatch: (message: string) => new CliError('LAYOUT_MISMATCH', message, 1),
  notFound: (message: string) => new CliError('NOT_FOUND', message, 1),
  refused: (message: string) => new CliError('REFUSED', message, 1),
  internal: (message: string, cause: unknown) => new CliError('INTERNAL', message, 1, { cause })
} as const
