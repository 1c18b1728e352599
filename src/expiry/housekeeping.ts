import type { Logger } from 'pino'
import type { StoreContext } from '../store/context.js'
import { countDeadLetters, purgeDeadLettersOlderThan } from '../store/dead-letters.js'
import { recordFound, type Found } from '../store/stats.js'
import type { RunnerStats } from './runner.js'

/**
 * The worker's periodic chores, apart from the expiry path: the counters log
 * line, the found counts `checkoutctl stats` reads, and the removal of dead
 * letters past DEAD_LETTER_RETENTION_MS. Each runs one at a time; none
 * holds up an expiry.
 */
export interface HousekeepingOptions {
  store: StoreContext
  log: Logger
  /** How this worker found expiries so far (the sweeper's counters). */
  found: () => Found
  stats: () => RunnerStats & { running: number }
  deadLetterRetentionMs: number
  reportEveryMs?: number
  flushEveryMs?: number
  purgeEveryMs?: number
}

export interface Housekeeping {
  /** Stops the timers and records the last found counts. */
  stop: () => Promise<void>
}

export function startHousekeeping (opts: HousekeepingOptions): Housekeeping {
  const { store, log } = opts

  const report = setInterval(() => {
    countDeadLetters(store).then((deadLetters) => {
      log.info({ found: opts.found(), ...opts.stats(), deadLetters }, 'expiry pipeline counters')
    }, (err: unknown) => log.debug({ err }, 'could not count dead letters'))
  }, opts.reportEveryMs ?? 60_000)

  // Only what was found since the last flush is added, so the shared counts never count twice.
  const flushed: Found = { event: 0, sweep: 0 }
  let flushing: Promise<void> = Promise.resolve()
  const flushFound = async () => {
    flushing = flushing.then(async () => {
      const found = { ...opts.found() }
      await recordFound(store, { event: found.event - flushed.event, sweep: found.sweep - flushed.sweep })
      Object.assign(flushed, found)
    }).catch((err: unknown) => log.debug({ err }, 'could not record the found counts'))
    await flushing
  }
  const flush = setInterval(() => { void flushFound() }, opts.flushEveryMs ?? 10_000)

  let purging: Promise<void> | undefined
  const purgeOld = () => {
    purging ??= purgeDeadLettersOlderThan(store, opts.deadLetterRetentionMs, { batch: 100 }).then(({ purged }) => {
      if (purged > 0) log.info({ purged, retentionMs: opts.deadLetterRetentionMs }, 'dead letters past their retention removed')
    }, (err: unknown) => log.warn({ err }, 'could not remove dead letters past their retention'))
      .finally(() => { purging = undefined })
  }
  purgeOld()
  const purge = setInterval(purgeOld, opts.purgeEveryMs ?? 3_600_000)
  for (const timer of [report, flush, purge]) timer.unref()

  return {
    async stop () {
      for (const timer of [report, flush, purge]) clearInterval(timer)
      await purging
      await flushFound()
    }
  }
}
