import { connect } from 'node:net'

/**
 * One HTTP/1.1 request written byte for byte to a socket: the target goes
 * out exactly as given (percent-encodings, `//`, `..`, absolute-form), which
 * no HTTP client does. Answers the status code, or 0 when the server closed
 * without one.
 */
export interface RawRequest {
  method: string
  target: string
  headers?: Record<string, string>
  body?: string
}

export async function rawRequest (port: number, { method, target, headers = {}, body }: RawRequest, timeoutMs = 5_000): Promise<number> {
  const lines = [`${method} ${target} HTTP/1.1`, 'Host: 127.0.0.1', 'Connection: close']
  for (const [name, value] of Object.entries(headers)) lines.push(`${name}: ${value}`)
  if (body !== undefined) lines.push(`Content-Length: ${Buffer.byteLength(body)}`)
  const text = `${lines.join('\r\n')}\r\n\r\n${body ?? ''}`
  return await new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1')
    let received = ''
    const timer = setTimeout(() => {
      socket.destroy()
      reject(new Error(`no answer in ${timeoutMs} ms to ${method} ${target}`))
    }, timeoutMs)
    socket.setEncoding('latin1')
    socket.on('data', (chunk: string) => { received += chunk })
    socket.on('error', (err) => { clearTimeout(timer); reject(err) })
    socket.on('close', () => {
      clearTimeout(timer)
      const status = /^HTTP\/1\.1 (\d{3}) /.exec(received)
      resolve(status?.[1] === undefined ? 0 : Number(status[1]))
    })
    // write, not end: a half-closed socket makes the server abandon a reply still in progress.
    socket.write(text)
  })
}

/**
 * Ways of spelling one path that a router may match as the same route:
 * encoded letters, encoded slashes and dots, doubled slashes, dot segments,
 * absolute-form, another case, a trailing slash, a query.
 */
export function spellings (path: string): string[] {
  const segments = path.split('/').slice(1)
  const first = segments[0] ?? ''
  const rest = segments.slice(1).join('/')
  const tail = rest === '' ? '' : `/${rest}`
  const hex = (c: string) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`
  const lowerHex = (c: string) => `%${c.charCodeAt(0).toString(16).toLowerCase()}`
  return [
    path,
    `/${hex(first[0] ?? '')}${first.slice(1)}${tail}`,
    `/${first.slice(0, -1)}${lowerHex(first.slice(-1))}${tail}`,
    `/${[...first].map(hex).join('')}${tail}`,
    `/${first}${rest === '' ? '' : `%2F${rest}`}`,
    `/${first}${rest === '' ? '' : `%2f${rest.replaceAll('/', '%2f')}`}`,
    `/%2E/${first}${tail}`,
    `/x/%2E%2E/${first}${tail}`,
    `/${first}/%2e%2e/${first}${tail}`,
    `//${first}${tail}`,
    `/${first}/${tail}`,
    `/${first}${tail.replaceAll('/', '//')}`,
    `/./${first}${tail}`,
    `/${first}/./${rest}`,
    `/x/../${first}${tail}`,
    `/${first}/../${first}${tail}`,
    `http://x${path}`,
    `http://127.0.0.1/${hex(first[0] ?? '')}${first.slice(1)}${tail}`,
    `HTTP://X${path}`,
    `/${first.toUpperCase()}${tail}`,
    `/${first[0]?.toUpperCase() ?? ''}${first.slice(1)}${tail}`,
    `${path}/`,
    `${path}?`,
    `${path}?access_token=x`,
    `${path};x`,
    `${path}%00`,
    `${path}#x`,
    `/%20${first}${tail}`
  ]
}

/**
 * Every `METHOD /path` the app serves, read off `printRoutes()` (the
 * router's own tree), so a test notices a route it was not told about.
 */
export function servedRoutes (tree: string): string[] {
  const stack: string[] = []
  const routes: string[] = []
  for (const line of tree.split('\n')) {
    const match = /^([│ ]*)[├└]── (\S+)(?: \(([A-Z, ]+)\))?$/u.exec(line.trimEnd())
    if (match === null) continue
    const depth = (match[1] ?? '').length / 4
    stack.length = depth
    stack.push(match[2] ?? '')
    const path = stack.join('')
    for (const method of (match[3] ?? '').split(', ').filter((m) => m !== '')) routes.push(`${method} ${path}`)
  }
  return routes.sort()
}
