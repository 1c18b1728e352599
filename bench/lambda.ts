import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { buildApp } from '../src/app.js'
import { loadConfig } from '../src/config.js'
import { startRedisServer, redisVersion } from './redis-server.js'
import { percentile } from './stats.js'

/**
 * `npm run bench:lambda`: the bundled Lambda handler (dist/bundle/lambda.mjs,
 * built by `npm run bundle` just before) against a local redis-server.
 * Cold: a fresh node process imports the bundle (init connects Redis) and
 * answers its first invocation. Warm: ~2,000 invocations in this process,
 * POST /checkout then GET /checkout/:id alternately, from an HTTP API (v2)
 * event. Baseline: the same requests through buildApp's app.inject().
 */
const COLD_RUNS = Number(process.env.BENCH_COLD_RUNS ?? 7)
const WARM = Number(process.env.BENCH_WARM ?? 2000)
const bundle = fileURLToPath(new URL('../dist/bundle/lambda.mjs', import.meta.url))
const v2 = JSON.parse(readFileSync(new URL('../test/fixtures/lambda/apigw-http-v2.json', import.meta.url), 'utf8')) as Record<string, unknown>
const context = { awsRequestId: 'bench', getRemainingTimeInMillis: () => 30_000 }

function event (method: string, path: string, body?: unknown): Record<string, unknown> {
  const text = body === undefined ? undefined : JSON.stringify(body)
  const ctx = v2.requestContext as Record<string, unknown> & { http: Record<string, unknown> }
  return {
    ...v2,
    rawPath: path,
    headers: text === undefined ? {} : { 'content-type': 'application/json' },
    body: text ?? null,
    isBase64Encoded: false,
    requestContext: { ...ctx, http: { ...ctx.http, method, path } }
  }
}

/** The child for one cold start: init + first invocation, times from process start (performance.now()). */
const COLD_CHILD = `
const t0 = performance.now()
const { handler } = await import(process.argv[1])
const init = performance.now()
const res = await handler(JSON.parse(process.argv[2]), { awsRequestId: 'cold', getRemainingTimeInMillis: () => 30000 })
process.stdout.write(JSON.stringify({ status: res.statusCode, loadedAt: t0, init, first: performance.now() }))
process.exit(0)
`

interface Cold { init: number, first: number, wall: number }

async function coldStart (env: NodeJS.ProcessEnv): Promise<Cold> {
  const started = performance.now()
  const ev = JSON.stringify(event('POST', '/checkout', { id: `cold-${randomBytes(4).toString('hex')}`, ttlMs: 60_000 }))
  const child = spawn(process.execPath, ['--input-type=module', '-e', COLD_CHILD, bundle, ev], { env, stdio: ['ignore', 'pipe', 'inherit'] })
  let out = ''
  child.stdout.on('data', (d: Buffer) => { out += d.toString() })
  await new Promise((resolve) => child.once('exit', resolve))
  const r = JSON.parse(out) as { status: number, init: number, first: number }
  if (r.status !== 201) throw new Error(`cold start answered ${r.status}`)
  return { init: r.init, first: r.first, wall: performance.now() - started }
}

async function timeEach (n: number, call: (i: number) => Promise<number>): Promise<number[]> {
  const ms: number[] = []
  for (let i = 0; i < n; i++) {
    const t0 = performance.now()
    const status = await call(i)
    ms.push(performance.now() - t0)
    if (status >= 300) throw new Error(`request ${i} answered ${status}`)
  }
  return ms.sort((a, b) => a - b)
}

const row = (name: string, sorted: number[]) =>
  `| ${name} | ${sorted.length} | ${percentile(sorted, 0.5).toFixed(2)} | ${percentile(sorted, 0.99).toFixed(2)} |`

const redis = await startRedisServer()
try {
  const env = { ...process.env, REDIS_URL: redis.url, KEY_PREFIX: `bl${randomBytes(3).toString('hex')}:`, LOG_LEVEL: 'silent' }
  const cold: Cold[] = []
  for (let i = 0; i < COLD_RUNS; i++) cold.push(await coldStart(env))

  Object.assign(process.env, env)
  const { handler, close } = await import(bundle) as { handler: (e: unknown, c: unknown) => Promise<{ statusCode: number }>, close: () => Promise<void> }
  // Request i: POST a new hold when even, GET the one just made when odd; warm-up on ids of its own.
  let round = 'warmup'
  const id = (i: number) => `${round}-${Math.floor(i / 2)}`
  const call = (i: number) => i % 2 === 0
    ? event('POST', '/checkout', { id: id(i), ttlMs: 60_000, payload: { sku: 'A1', qty: 2 } })
    : event('GET', `/checkout/${id(i)}`)
  for (let i = 0; i < 200; i++) await handler(call(i), context)
  round = 'lambda'
  const warm = await timeEach(WARM, async (i) => (await handler(call(i), context)).statusCode)
  await close()

  const app = await buildApp({ config: loadConfig({ ...env, KEY_PREFIX: `bi${randomBytes(3).toString('hex')}:` }) })
  await app.ready()
  const inject = (i: number) => i % 2 === 0
    ? app.inject({ method: 'POST', url: '/checkout', headers: { 'content-type': 'application/json' }, payload: JSON.stringify({ id: id(i), ttlMs: 60_000, payload: { sku: 'A1', qty: 2 } }) })
    : app.inject({ method: 'GET', url: `/checkout/${id(i)}` })
  round = 'warmup-inject'
  for (let i = 0; i < 200; i++) await inject(i)
  round = 'inject'
  const injected = await timeEach(WARM, async (i) => (await inject(i)).statusCode)
  await app.close()

  const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b)
  const median = (xs: number[]) => percentile(sorted(xs), 0.5).toFixed(0)
  console.log(`node ${process.version}, redis ${redisVersion()}, ${COLD_RUNS} cold starts, ${WARM} warm requests (POST/GET alternating)\n`)
  console.log('| cold start (fresh node process, bundle) | median ms | min ms | max ms |\n|---|---|---|---|')
  const picks: Array<[string, (c: Cold) => number]> = [
    ['process start to init done (Redis connected)', (c) => c.init], ['first invocation answered', (c) => c.first], ['spawn to exit (parent clock)', (c) => c.wall]
  ]
  for (const [name, pick] of picks) {
    const xs = sorted(cold.map(pick))
    console.log(`| ${name} | ${median(xs)} | ${(xs[0] ?? 0).toFixed(0)} | ${(xs.at(-1) ?? 0).toFixed(0)} |`)
  }
  console.log('\n| warm, in process | requests | p50 ms | p99 ms |\n|---|---|---|---|')
  console.log(row('Lambda handler (v2 event)', warm))
  console.log(row('baseline: app.inject()', injected))
} finally {
  await redis.destroy()
}
