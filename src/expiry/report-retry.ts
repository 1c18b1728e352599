import type { Logger } from 'pino'

/**
 * Sends a run's outcome (ack, fail, release) until Redis answers it. A
 * refusal (OOM under noeviction, MISCONF, BUSY, LOADING, a dropped
 * connection) passes; dropping the outcome would leave the job held until
 * its safety net and run a handler that succeeded again. The answer itself
 * is fenced, so sending it late is safe: Redis says when the claim is no
 * longer ours. Stops only when `giveUp` names a reason. `log` is called
 * only when there is something to log: a logger made per run for every
 * outcome sent was a large share of the worker's time per expiry.
 */
const FIRST_DELAY_MS = 50
const MAX_DELAY_MS = 2000

export class ReportGivenUp extends Error {
  constructor (reason: string, options: { cause: unknown }) {
    super(`outcome not recorded: ${reason}`, options)
    this.name = 'ReportGivenUp'
  }
}

export async function sendUntilAnswered<T> (
  send: () => Promise<T>, giveUp: () => string | undefined, log: () => Logger, what: string
): Promise<T> {
  for (let failures = 0; ; failures++) {
    try {
      const answer = await send()
      if (failures > 0) log().info({ failures }, `${what} recorded after Redis refused it`)
      return answer
    } catch (err) {
      const reason = giveUp()
      if (reason !== undefined) throw new ReportGivenUp(reason, { cause: err })
      // Once at warn: a refusal usually lasts many tries.
      if (failures === 0) log().warn({ err }, `Redis refused the ${what}; sending it again until it is recorded`)
      else log().debug({ err, failures }, `Redis refused the ${what} again`)
      const exp = Math.min(MAX_DELAY_MS, FIRST_DELAY_MS * 2 ** failures)
      await new Promise((resolve) => setTimeout(resolve, exp / 2 + Math.random() * exp / 2))
    }
  }
}
