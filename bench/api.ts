import { spawn, type ChildProcess } from 'node:child_process'
import { createWriteStream, existsSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import autocannon from 'autocannon'
import { freePort } from '../test/helpers/redis.js'
import { killAll, root, track } from './children.js'
import { codeVersion, describeMachine } from './machine.js'
import { envNumber, guardRun } from './memory-kit.js'
import { startRedisServer } from './redis-server.js'
import { writeDoc } from './report.js'

/**
 * `npm run bench:api`: the API built for production (`npm run build`, LOG_LEVEL
 * info to a file, a bearer token, metrics on) against a bare Fastify + ioredis
 * handler (bench/api-bare.ts) on the same Redis, POST /checkout and
 * GET /checkout/:id, with autocannon in alternating runs; GET also with
 * READ_CACHE=true (a third process on the same data). Reports req/s, p50,
 * p99 and the ratio, and writes the table into docs/benchmarks.md.
 * BENCH_MAX_MINUTES (default 10) caps the whole run.
 */
const SECONDS = Number(process.env.BENCH_API_SECONDS ?? 5)
const ROUNDS = Number(process.env.BENCH_API_ROUNDS ?? 3)
const CONNECTIONS = Number(process.env.BENCH_API_CONNECTIONS ?? 50)
const TOKEN = 'bench-token'
const PRELOADED = 1000
const resultsDir = join(root, 'bench', 'results')
mkdirSync(resultsDir, { recursive: true })

interface Api { name: 'checkout-expiry' | 'checkout-expiry READ_CACHE' | 'bare handler', base: string, proc: ChildProcess }
interface Run { reqPerSec: number, p50: number, p99: number, errors: number, unexpected: number }

async function startApi (name: Api['name'], redisUrl: string): Promise<Api> {
  const port = await freePort()
  const ours = name !== 'bare handler'
  const cached = name === 'checkout-expiry READ_CACHE'
  const args = ours ? [join(root, 'dist/src/server.js')] : ['--import', 'tsx', join(root, 'bench/api-bare.ts')]
  const env = ours
    ? { REDIS_URL: redisUrl, PORT: String(port), LOG_LEVEL: 'info', API_TOKENS: TOKEN, KEY_PREFIX: 'bench:', READ_CACHE: cached ? 'true' : 'false' }
    : { REDIS_URL: redisUrl, PORT: String(port) }
  const proc = spawn(process.execPath, args, { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  track(proc)
  const log = createWriteStream(join(resultsDir, `api-${cached ? 'ours-cached' : ours ? 'ours' : 'bare'}.log`))
  let out = ''
  proc.stdout?.on('data', (d: Buffer) => { log.write(d); if (out.length < 10_000) out += d.toString() })
  proc.stderr?.on('data', (d: Buffer) => { log.write(d); out += d.toString() })
  const deadline = Date.now() + 20_000
  while (!/checkout API ready|bare api ready/.test(out)) {
    if (Date.now() > deadline || proc.exitCode !== null) throw new Error(`${name} did not start:\n${out}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  return { name, base: `http://127.0.0.1:${port}`, proc }
}

const headers = { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` }
let seq = 0

async function load (api: Api, kind: 'POST' | 'GET'): Promise<Run> {
  const expected = kind === 'POST' ? 201 : 200
  let unexpected = 0
  const result = await autocannon({
    url: api.base,
    connections: CONNECTIONS,
    duration: SECONDS,
    requests: [kind === 'POST'
      ? {
          method: 'POST',
          path: '/checkout',
          headers,
          setupRequest: (req) => ({ ...req, body: JSON.stringify({ id: `b-${process.pid}-${seq++}`, ttlMs: 600_000 }) }),
          onResponse: (status) => { if (status !== expected) unexpected++ }
        }
      : {
          method: 'GET',
          headers,
          setupRequest: (req) => ({ ...req, path: `/checkout/get-${seq++ % PRELOADED}` }),
          onResponse: (status) => { if (status !== expected) unexpected++ }
        }]
  })
  return { reqPerSec: result.requests.average, p50: result.latency.p50, p99: result.latency.p99, errors: result.errors, unexpected }
}

async function preload (api: Api): Promise<void> {
  for (let i = 0; i < PRELOADED; i += 50) {
    await Promise.all(Array.from({ length: 50 }, async (_v, j) => {
      const res = await fetch(`${api.base}/checkout`, { method: 'POST', headers, body: JSON.stringify({ id: `get-${i + j}`, ttlMs: 3_600_000 }) })
      if (res.status !== 201 && res.status !== 409) throw new Error(`${api.name}: preload answered ${res.status}`)
    }))
  }
}

async function warmUp (api: Api): Promise<void> {
  for (let i = 0; i < PRELOADED; i += 50) {
    await Promise.all(Array.from({ length: 50 }, async (_v, j) => {
      const res = await fetch(`${api.base}/checkout/get-${i + j}`, { headers })
      await res.arrayBuffer()
    }))
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0

async function main (): Promise<void> {
  if (!existsSync(join(root, 'dist/src/server.js'))) throw new Error('run `npm run build` first (npm run bench:api does)')
  const redis = await startRedisServer()
  const apis = [await startApi('checkout-expiry', redis.url), await startApi('bare handler', redis.url)]
  // Same KEY_PREFIX as the first: it reads the holds the first preloaded.
  const cachedApi = await startApi('checkout-expiry READ_CACHE', redis.url)
  for (const api of apis) await preload(api)
  // Every system reads each preloaded hold once before the runs: the cache starts
  // full and no system meets its GET path cold.
  for (const api of [...apis, cachedApi]) await warmUp(api)
  const runs = new Map<string, Run[]>()
  for (let round = 0; round < ROUNDS; round++) {
    // Alternate who goes first, so drift on a noisy machine hits both alike.
    const order = round % 2 === 0 ? apis : [...apis].reverse()
    for (const kind of ['POST', 'GET'] as const) {
      // The cache changes only reads: it runs GET, in the same alternation.
      const systems = kind === 'GET' ? (round % 2 === 0 ? [...order, cachedApi] : [cachedApi, ...order]) : order
      for (const api of systems) {
        const run = await load(api, kind)
        const key = `${api.name} ${kind}`
        runs.set(key, [...(runs.get(key) ?? []), run])
        process.stdout.write(`round ${round + 1} ${key}: ${Math.round(run.reqPerSec)} req/s, p50 ${run.p50} ms, p99 ${run.p99} ms` +
          `${run.errors + run.unexpected > 0 ? `, ${run.errors} errors, ${run.unexpected} unexpected statuses` : ''}\n`)
      }
    }
  }
  for (const api of [...apis, cachedApi]) api.proc.kill('SIGTERM')
  await redis.destroy()

  const rows: string[] = []
  for (const [kind, system] of [['POST', 'checkout-expiry'], ['GET', 'checkout-expiry'], ['GET', 'checkout-expiry READ_CACHE']] as const) {
    const ours = runs.get(`${system} ${kind}`) ?? []
    const bare = runs.get(`bare handler ${kind}`) ?? []
    const pick = (rs: Run[]) => ({ rps: median(rs.map((r) => r.reqPerSec)), p50: median(rs.map((r) => r.p50)), p99: median(rs.map((r) => r.p99)), bad: rs.reduce((a, r) => a + r.errors + r.unexpected, 0) })
    const o = pick(ours)
    const b = pick(bare)
    rows.push(`| ${kind} /checkout${kind === 'GET' ? '/:id' : ''}${system === 'checkout-expiry' ? '' : ' (`READ_CACHE=true`)'} | ${Math.round(o.rps)} | ${o.p50} | ${o.p99} | ${Math.round(b.rps)} | ${b.p50} | ${b.p99} | **${(o.rps / b.rps).toFixed(2)}×** | ${o.bad} / ${b.bad} |`)
  }
  const machine = describeMachine()
  const section = [
    `Command: \`npm run bench:api\` (${ROUNDS} alternating rounds of ${SECONDS} s per system and route, ${CONNECTIONS} connections, medians).`,
    `Run on ${new Date().toISOString().slice(0, 10)}, ${codeVersion()}; ${machine.text}.`,
    '',
    'checkout-expiry runs from `npm run build` with a bearer token, metrics, validation and `LOG_LEVEL=info` to a file; the bare handler is one `SET NX PX` (POST) or a pipelined `GET` + `PTTL` (GET) on Fastify + ioredis, without validation, logging, auth or metrics. The `READ_CACHE=true` row is a third API process on the same holds, its GETs answered from its read cache after the first read of each id (docs/read-cache.md).',
    '',
    '| route | checkout-expiry req/s | p50 ms | p99 ms | bare req/s | p50 ms | p99 ms | ratio | errors (ours / bare) |',
    '|---|---|---|---|---|---|---|---|---|',
    ...rows
  ].join('\n')
  process.stdout.write(`\n${section}\n`)
  // BENCH_WRITE_DOC=0 prints the table without touching the docs (trial runs).
  if (process.env.BENCH_WRITE_DOC !== '0') writeDoc(join(root, 'docs', 'benchmarks.md'), section, 'api')
}

const stopGuard = guardRun('bench:api', envNumber('BENCH_MAX_MINUTES', 10, 1, 120) * 60_000)
try {
  await main()
} finally {
  stopGuard()
  killAll()
}
