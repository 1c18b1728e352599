import type { Log } from '../redis/connection.js'

/**
 * Logs a failure that repeats (a claim Redis keeps refusing) once per
 * interval: the first at once, then one line per interval with how many
 * happened since, so an outage of seconds is a few lines, not hundreds.
 */
export class RepeatedWarning {
  private count = 0
  private loggedAt = -Infinity

  constructor (
    private readonly log: Log, private readonly message: string, private readonly recoveredMessage: string, private readonly intervalMs = 10_000
  ) {}

  failed (fields: Record<string, unknown>, now = Date.now()): void {
    this.count++
    if (now - this.loggedAt < this.intervalMs) return
    this.log.warn({ ...fields, times: this.count }, this.message)
    this.loggedAt = now
    this.count = 0
  }

  /** It worked again: says how many failures went unlogged; the next failure is logged at once. */
  recovered (): void {
    if (this.count > 0) this.log.info({ times: this.count }, this.recoveredMessage)
    this.count = 0
    this.loggedAt = -Infinity
  }
}
