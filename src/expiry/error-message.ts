/**
 * The message stored as a failed run's last error: what `GET /checkout/:id`
 * shows as `lastError` (public), what the dead-letter set and the `dead`
 * event carry. A handler's own message is kept, bounded in length, and the
 * userinfo of any URL in it (`https://user:password@host`) is removed: a
 * fetch error quotes the URL it called, credentials and all.
 */
export const LAST_ERROR_MAX_CHARS = 500

/** `scheme://` then everything up to the last `@` before the host ends (whitespace, `/`, `?`, `#`). */
const URL_USERINFO = /\b([a-z][a-z0-9+.-]*:\/\/)[^\s/?#]*@/gi

export function lastErrorMessage (error: unknown): string {
  const text = describe(error).replace(URL_USERINFO, '$1')
  if (text.length <= LAST_ERROR_MAX_CHARS) return text
  let cut = text.slice(0, LAST_ERROR_MAX_CHARS - 1)
  // Never end on half of a surrogate pair.
  if (/[\uD800-\uDBFF]$/.test(cut)) cut = cut.slice(0, -1)
  return `${cut}…`
}

/** Any thrown value as text; never throws itself (a value without toString, a throwing getter). */
function describe (error: unknown): string {
  try {
    if (error instanceof Error) return String(error.message) || error.name
    if (error === undefined) return 'the handler failed without an error (undefined)'
    return String(error) || 'the handler failed with an empty message'
  } catch {
    return `the handler failed with a value that has no text (${Object.prototype.toString.call(error)})`
  }
}
