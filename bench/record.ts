import { appendFileSync, existsSync, readFileSync } from 'node:fs'

/**
 * One handler call, as every system's worker records it: a JSON line appended
 * to $BENCH_RECORD_FILE at the start of the handler. `deadline` is what the
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

export function appendRecord (file: string, record: CallRecord): void {
  appendFileSync(file, JSON.stringify(record) + '\n')
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
