import { appendFileSync, existsSync, readFileSync } from 'node:fs'

/**
 * One handler call, as every system's worker records it: a JSON line appended
 * to $BENCH_RECORD_FILE at the start of the handler (with
 * $BENCH_RECORD_BUFFER_MS, kept in memory and appended every that many ms;
 * see appendRecord). `deadline` is what the
 * system itself says the item was due at; the keyspace baseline cannot know
 * it (the event carries only the key), so the benchmark supplies it.
 */
export interface CallRecord {
  id: string
  attempt: number
  /** Epoch ms the item was due, when the system tells the handler. */
  deadline?: number
  /** Epoch ms the handler started. */
  now: number
  pid: number
}

export function recordFile (): string {
  const file = process.env.BENCH_RECORD_FILE
  if (!file) throw new Error('BENCH_RECORD_FILE is not set')
  return file
}

/**
 * Unbuffered (the default), each call is one appendFileSync: nothing a
 * worker finished is lost when it is SIGKILLed (scenario F). At 20,000 calls/s
 * that write is a real cost, so the burst scenarios set
 * BENCH_RECORD_BUFFER_MS in every system's workers: lines are kept in memory
 * and appended every that many ms, at SIGTERM and at exit.
 */
const bufferMs = Number(process.env.BENCH_RECORD_BUFFER_MS ?? 0)
const pending = new Map<string, string[]>()

function flush (): void {
  for (const [file, lines] of pending) {
    if (lines.length === 0) continue
    pending.set(file, [])
    appendFileSync(file, lines.join(''))
  }
}

if (bufferMs > 0) {
  setInterval(flush, bufferMs).unref()
  process.on('exit', flush)
  // Only writes what is pending: every worker entry has its own SIGTERM handler that ends the process.
  process.on('SIGTERM', flush)
}

export function appendRecord (file: string, record: CallRecord): void {
  const line = JSON.stringify(record) + '\n'
  if (!(bufferMs > 0)) {
    appendFileSync(file, line)
    return
  }
  const lines = pending.get(file)
  if (lines) lines.push(line)
  else pending.set(file, [line])
}

/**
 * The benchmark's handler body, the same in every system's worker. With
 * $BENCH_HANDLER_MS it takes that long and records the call when it
 * completes (a run cut short by a killed worker leaves no record); without,
 * it records at once.
 */
export function runHandler (file: string, record: CallRecord): void | Promise<void> {
  const ms = Number(process.env.BENCH_HANDLER_MS ?? 0)
  if (!(ms > 0)) {
    appendRecord(file, record)
    return
  }
  return new Promise((resolve) => setTimeout(() => { appendRecord(file, record); resolve() }, ms))
}

export function readRecords (file: string): CallRecord[] {
  if (!existsSync(file)) return []
  const out: CallRecord[] = []
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (line === '') continue
    try {
      out.push(JSON.parse(line) as CallRecord)
    } catch {
      // A line being written right now; the next read sees it whole.
    }
  }
  return out
}
