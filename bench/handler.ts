import type { ExpiryEvent } from '../src/expiry/handlers.js'
import { appendRecord, recordFile } from './record.js'

/**
 * The expiry handler the benchmark gives checkout-expiry's worker
 * (EXPIRY_HANDLERS=bench/handler.ts): records the call and returns at once.
 */
const file = recordFile()

export default function record (event: ExpiryEvent): void {
  const now = Date.now()
  appendRecord(file, { id: event.id, attempt: event.attempt, deadline: Date.parse(event.deadline), now, pid: process.pid })
}
