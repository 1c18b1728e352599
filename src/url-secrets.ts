/**
 * URL settings can carry secrets: a password in REDIS_URL, a token as the
 * user name or in the query of WEBHOOK_URL. Whatever the service prints about
 * such a URL (a config error, an error message) goes through here first.
 */
const MASK = '***'

/** The URL with its password (or a lone user name), query values and fragment replaced by `***`. */
export function maskUrl (value: string): string {
  let url: URL
  try {
    url = new URL(value)
  } catch {
    return maskUnparsed(value)
  }
  // `user:pw@host` parses too, as scheme `user:` and path `pw@host`.
  if (!hasCredentials(url) && value.includes('@')) return maskUnparsed(value)
  if (!hasCredentials(url) && url.search === '' && url.hash === '') return value
  if (url.password) url.password = MASK
  else if (url.username) url.username = MASK
  for (const key of new Set(url.searchParams.keys())) url.searchParams.set(key, MASK)
  if (url.hash) url.hash = MASK
  return url.href
}

/**
 * A value that is not a URL gives no parse to trust: anything up to its last
 * `@` may be credentials, anything after a `?` or `#` a query.
 */
function maskUnparsed (value: string): string {
  const scheme = /^[a-z][a-z0-9+.-]*:\/*/i.exec(value)?.[0] ?? ''
  let rest = value.slice(scheme.length)
  const at = rest.lastIndexOf('@')
  if (at >= 0) rest = `${MASK}@${rest.slice(at + 1)}`
  const query = rest.search(/[?#]/)
  if (query >= 0) rest = `${rest.slice(0, query + 1)}${MASK}`
  return `${scheme}${rest}`
}

export const hasCredentials = (url: URL): boolean => url.username !== '' || url.password !== ''

/** `text` (an error message) with every copy of the URL, its query and fragment masked. */
export function withoutUrlSecrets (text: string, url: URL): string {
  let out = text.split(url.href).join(maskUrl(url.href))
  for (const part of [url.search, url.hash]) {
    if (part.length > 1) out = out.split(part).join(`${part[0]}${MASK}`)
  }
  return out
}
