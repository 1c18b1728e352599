import { connect } from 'node:net'
import t from 'tap'
import { HEADERS_TIMEOUT_MS, REQUEST_TIMEOUT_MS } from '../../src/app.js'
import { testApp } from '../helpers/app.js'
import { startRedis } from '../helpers/redis.js'

/**
 * Slow clients get the documented timeouts, each answered with a 408 body:
 * headers within HEADERS_TIMEOUT_MS, the whole request within
 * REQUEST_TIMEOUT_MS; a body that stops half way is answered too, not
 * dropped in silence.
 */
const redis = await startRedis()
t.teardown(redis.stop)
const { app } = await testApp(redis.url)
t.teardown(() => app.close())
await app.listen({ port: 0, host: '127.0.0.1' })
const { port } = app.server.address() as { port: number }
const LIMIT_MS = 40_000

/** Sends `first`, then `drip` every 500 ms (while it returns text); resolves with what came back and when. */
async function slowRequest (first: string, drip: () => string | undefined): Promise<{ answer: string, ms: number }> {
  return await new Promise((resolve) => {
    const started = Date.now()
    const socket = connect(port, '127.0.0.1')
    let answer = ''
    const timer = setInterval(() => {
      const more = drip()
      if (more !== undefined && socket.writable) socket.write(more)
    }, 500)
    const done = () => {
      clearInterval(timer)
      clearTimeout(limit)
      resolve({ answer, ms: Date.now() - started })
    }
    const limit = setTimeout(() => socket.destroy(), LIMIT_MS)
    socket.on('data', (d: Buffer) => { answer += d.toString() })
    socket.on('close', done)
    socket.on('error', () => {})
    socket.write(first)
  })
}

t.test('trickled headers, a trickled body, a body that stops: each is answered 408 within its documented timeout', async (t) => {
  const post = 'POST /checkout HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n'
  const [headers, body, stopped] = await Promise.all([
    slowRequest('GET /healthz HTTP/1.1\r\nHost: x\r\n', () => 'X-Slow: 1\r\n'),
    slowRequest(post, () => ' '),
    slowRequest(`${post}{"id":`, () => undefined)
  ])
  for (const [what, result, limitMs] of [
    ['trickled headers', headers, HEADERS_TIMEOUT_MS],
    ['trickled body', body, REQUEST_TIMEOUT_MS],
    ['a body that stops half way', stopped, REQUEST_TIMEOUT_MS]
  ] as const) {
    t.match(result.answer, /^HTTP\/1\.1 408 /, `${what}: 408`)
    t.match(result.answer, /"code":"REQUEST_TIMEOUT"/, `${what}: the common error body`)
    t.ok(result.ms < limitMs + 3000, `${what}: answered after ${result.ms} ms (limit ${limitMs} ms)`)
  }
})
