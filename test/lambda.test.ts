import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import t from 'tap'
import { startRedis } from './helpers/redis.js'
import { pauseRedis, redisPid } from './helpers/redis-pause.js'

/**
 * src/lambda.ts invoked in-process with API Gateway REST (v1), HTTP API (v2)
 * and ALB events recorded from AWS, against a real Redis: what API Gateway
 * or the ALB would send back to the client.
 */
const redis = await startRedis({ restartable: true })
t.teardown(redis.stop)
const COMMAND_TIMEOUT_MS = 300
Object.assign(process.env, {
  REDIS_URL: redis.url,
  KEY_PREFIX: `t${randomBytes(4).toString('hex')}:`,
  LOG_LEVEL: 'silent',
  REDIS_COMMAND_TIMEOUT_MS: String(COMMAND_TIMEOUT_MS)
})
const { handler, close } = await import('../src/lambda.js')
t.teardown(close)
const admin = redis.client()

type Kind = 'v1' | 'v2' | 'alb'
type Event = Record<string, unknown> & { headers: Record<string, string> }
const fixture = (file: string): Event => JSON.parse(readFileSync(new URL(`./fixtures/lambda/${file}`, import.meta.url), 'utf8')) as Event
const recorded: Record<Kind, Event> = { v1: fixture('apigw-rest-v1.json'), v2: fixture('apigw-http-v2.json'), alb: fixture('alb.json') }
const context = { awsRequestId: 'test', getRemainingTimeInMillis: () => 30_000 }

/** The recorded event of a kind, for another method, path and body (base64 as that kind of event carries it). */
function eventFor (kind: Kind, method: string, path: string, body?: unknown, base64 = kind === 'v2'): Event {
  const event = structuredClone(recorded[kind])
  const headers = Object.fromEntries(Object.entries(event.headers).filter(([name]) => !/^content-(type|length)$/i.test(name)))
  const text = body === undefined ? undefined : JSON.stringify(body)
  if (text !== undefined) headers['content-type'] = 'application/json'
  event.headers = headers
  delete event.multiValueHeaders
  event.body = text === undefined ? (kind === 'alb' ? '' : null) : base64 ? Buffer.from(text).toString('base64') : text
  event.isBase64Encoded = text !== undefined && base64
  const ctx = event.requestContext as Record<string, unknown> & { http?: Record<string, unknown> }
  if (kind === 'v2') {
    event.rawPath = path
    ctx.http = { ...ctx.http, method, path }
  } else {
    event.httpMethod = method
    event.path = path
    if (kind === 'v1') Object.assign(ctx, { httpMethod: method, path: `/prod${path}` })
  }
  return event
}

interface Answer { statusCode: number, headers: Record<string, string>, body: string, isBase64Encoded?: boolean }
const invoke = async (event: Event): Promise<Answer> => await handler(event, context as never) as Answer
const bodyOf = (res: Answer): unknown => JSON.parse(res.isBase64Encoded === true ? Buffer.from(res.body, 'base64').toString() : res.body)

const lambdaConnections = async (): Promise<string[]> =>
  (await admin.client('LIST') as string).split('\n').filter((line) => line.includes('name=checkout-expiry:api-lambda')).map((line) => /id=(\d+)/.exec(line)?.[1] ?? '')

for (const kind of ['v1', 'v2', 'alb'] as const) {
  t.test(`${kind} events: create, read, complete and the errors`, async (t) => {
    const id = `order-${kind}`
    const created = await invoke(eventFor(kind, 'POST', '/checkout', { id, ttlMs: 60_000, payload: { sku: 'A1', qty: 2 } }))
    t.equal(created.statusCode, 201, 'POST 201')
    t.equal(created.isBase64Encoded, false, 'a JSON answer is not base64')
    t.match(created.headers['content-type'], /^application\/json/)
    t.match(bodyOf(created), { id, status: 'pending', ttlMs: 60_000, payload: { sku: 'A1', qty: 2 } })
    if (kind !== 'alb') {
      const requestId = (recorded[kind].requestContext as { requestId: string }).requestId
      t.equal(created.headers['x-request-id'], requestId, "the gateway's request id names the request")
    }

    const read = await invoke(eventFor(kind, 'GET', `/checkout/${id}`))
    t.equal(read.statusCode, 200, 'GET 200')
    t.match(bodyOf(read), { id, status: 'pending', payload: { sku: 'A1', qty: 2 } })

    const again = await invoke(eventFor(kind, 'POST', '/checkout', { id, ttlMs: 5000 }))
    t.equal(again.statusCode, 409, 'the same id again: 409')
    t.match(bodyOf(again), { code: 'CHECKOUT_EXISTS' })

    const done = await invoke(eventFor(kind, 'POST', `/checkout/${id}/complete`))
    t.equal(done.statusCode, 200, 'complete 200')
    t.match(bodyOf(done), { id, status: 'completed' })

    const bad = await invoke(eventFor(kind, 'POST', '/checkout', { id: `${id}-bad`, ttlMs: 'soon' }))
    t.equal(bad.statusCode, 400, 'a bad body: 400')
    t.match(bodyOf(bad), { statusCode: 400 })
    const missing = await invoke(eventFor(kind, 'GET', `/checkout/${id}-none`))
    t.equal(missing.statusCode, 404, 'an unknown hold: 404')
    const route = await invoke(eventFor(kind, 'GET', '/nowhere'))
    t.equal(route.statusCode, 404, 'an unknown route: 404')
    t.match(bodyOf(route), { code: 'ROUTE_NOT_FOUND' })
  })
}

t.test('a base64 body on a REST API or ALB event too', async (t) => {
  for (const kind of ['v1', 'alb'] as const) {
    const res = await invoke(eventFor(kind, 'POST', '/checkout', { id: `b64-${kind}`, ttlMs: 60_000 }, true))
    t.equal(res.statusCode, 201, kind)
  }
})

t.test('warm invocations reuse the connection made during init', async (t) => {
  const before = await lambdaConnections()
  t.equal(before.length, 1, 'one connection after init')
  for (let i = 0; i < 3; i++) t.equal((await invoke(eventFor('v2', 'GET', '/checkout/order-v2'))).statusCode, 200)
  t.same(await lambdaConnections(), before, 'the same connection, none opened')
})

t.test('Redis frozen between invocations: 503 within the command timeout, then served again', async (t) => {
  const pid = await redisPid(admin)
  // Frozen (SIGSTOP) while the next invocation runs, as a thawed function can find its Redis.
  const paused = pauseRedis(pid, COMMAND_TIMEOUT_MS * 3)
  const started = performance.now()
  const frozen = await invoke(eventFor('v1', 'POST', '/checkout', { id: 'while-frozen', ttlMs: 60_000 }))
  const tookMs = performance.now() - started
  await paused
  t.equal(frozen.statusCode, 503, 'answered 503')
  t.match(bodyOf(frozen), { code: 'REDIS_UNAVAILABLE' })
  t.ok(tookMs < COMMAND_TIMEOUT_MS + 150, `within the command timeout (${Math.round(tookMs)} ms)`)
  const next = await invoke(eventFor('v1', 'POST', '/checkout', { id: 'after-thaw', ttlMs: 60_000 }))
  t.equal(next.statusCode, 201, 'the next invocation is served')
})
