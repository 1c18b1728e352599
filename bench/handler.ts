import type { ExpiryEvent } from '../src/expiry/handlers.js'
import { recordFile, runHandler } from './record.js'

/**
 * The expiry handler the benchmark gives checkout-expiry's worker
 * (EXPIRY_HANDLERS=bench/handler.ts): records the call (see runHandler).
 */
const file = recordFile()

export default function record (event: ExpiryEvent): void | Promise<void> {
  const now = Date.now()
  return runHandler(file, { id: event.id, attempt: event.attempt, deadline: Date.parse(event.deadline), now, pid: process.pid })
}
