/**
 * What a command prints: one JSON document with `--json`, a readable aligned
 * table otherwise. Commands build both and never write to the process
 * streams themselves, so tests run them in-process.
 */
export interface Io {
  out: (text: string) => void
  err: (text: string) => void
}

export interface Result {
  json: unknown
  text: string
  /** 0 unless the command ran and found something wrong (doctor: 3). */
  exitCode?: number
}

export const iso = (ms: number) => new Date(ms).toISOString()

export interface Column<T> {
  title: string
  value: (row: T) => string | number
  /** Numbers read best right-aligned. */
  right?: boolean
  /** Longer cells are cut with an ellipsis. */
  max?: number
}

const cell = (value: string | number, max: number | undefined) => {
  const text = String(value).replace(/\s+/g, ' ')
  return max !== undefined && text.length > max ? `${text.slice(0, max - 1)}…` : text
}

export function table<T> (rows: T[], columns: Array<Column<T>>): string {
  const cells = rows.map((row) => columns.map((c) => cell(c.value(row), c.max)))
  const widths = columns.map((c, i) => Math.max(c.title.length, ...cells.map((r) => (r[i] as string).length)))
  const line = (values: string[]) => values
    .map((v, i) => columns[i]?.right ? v.padStart(widths[i] as number) : v.padEnd(widths[i] as number))
    .join('  ').trimEnd()
  return [line(columns.map((c) => c.title)), ...cells.map(line)].join('\n')
}

/** Two aligned columns: a name and its value. */
export function fields (pairs: Array<[string, string | number]>): string {
  const width = Math.max(...pairs.map(([name]) => name.length))
  return pairs.map(([name, value]) => `${name.padEnd(width)}  ${value}`).join('\n')
}
