const UNITS_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const

/** `7d`, `12h`, `30m`, `45s`, `500ms` in milliseconds; undefined for anything else (zero included). */
export function parseDuration (text: string): number | undefined {
  const match = /^(\d{1,9})(ms|s|m|h|d)$/.exec(text.trim())
  if (!match) return undefined
  const ms = Number(match[1]) * UNITS_MS[match[2] as keyof typeof UNITS_MS]
  return ms > 0 ? ms : undefined
}
