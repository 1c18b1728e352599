import type { Logger } from 'pino'

/** How long a handler gets to stop after its signal aborts before its run is counted as failed anyway. */
export const ABORT_GRACE_MS = 5000

/**
 * Waits for a handler's promise. Once its signal aborts, the handler gets
 * ABORT_GRACE_MS to stop; one that ignores the signal is given up on (and
 * logged) so that its slot's outcome can be recorded.
 */
export async function settledOrGivenUp (result: Promise<void>, signal: AbortSignal, log: () => Logger): Promise<void> {
  let timer: NodeJS.Timeout | undefined
  let onAbort: (() => void) | undefined
  const givenUp = new Promise<never>((_resolve, reject) => {
    onAbort = () => {
      timer = setTimeout(() => {
        log().error({ graceMs: ABORT_GRACE_MS }, 'handler ignored its abort signal; its run is counted as failed while it may still be running')
        reject(signal.reason)
      }, ABORT_GRACE_MS)
    }
    if (signal.aborted) onAbort()
    else signal.addEventListener('abort', onAbort, { once: true })
  })
  givenUp.catch(() => {})
  try {
    await Promise.race([result, givenUp])
  } finally {
    clearTimeout(timer)
    if (onAbort) signal.removeEventListener('abort', onAbort)
  }
  // A handler that resolved although it was aborted did not finish its work.
  signal.throwIfAborted()
}
