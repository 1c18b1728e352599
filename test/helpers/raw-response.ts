import { connect } from 'node:net'

/** A response read off a socket: status, headers (lower-case names) and body. */
export interface RawResponse {
  statusCode: number
  headers: Record<string, string>
  body: string
}

/**
 * Writes `bytes` to a fresh connection as they are (a malformed or oversized
 * request no HTTP client would send) and reads the response until the
 * server closes: statusCode 0 when it closed without one.
 */
export async function rawExchange (port: number, bytes: string, timeoutMs = 5_000): Promise<RawResponse> {
  return await new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1')
    const chunks: Buffer[] = []
    const timer = setTimeout(() => {
      socket.destroy()
      reject(new Error(`no answer in ${timeoutMs} ms to ${bytes.slice(0, 60)}`))
    }, timeoutMs)
    socket.on('data', (chunk: Buffer) => chunks.push(chunk))
    // A reset after the answer (the server closes a request it refused) still leaves the answer to read.
    socket.on('error', () => {})
    socket.on('close', () => {
      clearTimeout(timer)
      resolve(parseResponse(Buffer.concat(chunks).toString('utf8')))
    })
    socket.write(bytes)
  })
}

function parseResponse (text: string): RawResponse {
  const end = text.indexOf('\r\n\r\n')
  const status = /^HTTP\/1\.1 (\d{3}) /.exec(text)
  if (end < 0 || status === null) return { statusCode: 0, headers: {}, body: text }
  const headers: Record<string, string> = {}
  for (const line of text.slice(0, end).split('\r\n').slice(1)) {
    const colon = line.indexOf(':')
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim()
  }
  let body = text.slice(end + 4)
  if (headers['transfer-encoding'] === 'chunked') body = unchunk(body)
  return { statusCode: Number(status[1]), headers, body }
}

function unchunk (text: string): string {
  let out = ''
  for (let i = 0; i < text.length;) {
    const lineEnd = text.indexOf('\r\n', i)
    const size = parseInt(text.slice(i, lineEnd), 16)
    if (!(size > 0)) break
    out += text.slice(lineEnd + 2, lineEnd + 2 + size)
    i = lineEnd + 2 + size + 2
  }
  return out
}

/** One request as bytes: the target exactly as given, `Connection: close`, a Content-Length for a body. */
export function requestBytes (method: string, target: string, headers: Record<string, string> = {}, body?: string): string {
  const lines = [`${method} ${target} HTTP/1.1`, 'Host: 127.0.0.1', 'Connection: close']
  for (const [name, value] of Object.entries(headers)) lines.push(`${name}: ${value}`)
  if (body !== undefined) lines.push(`Content-Length: ${Buffer.byteLength(body)}`)
  return `${lines.join('\r\n')}\r\n\r\n${body ?? ''}`
}
