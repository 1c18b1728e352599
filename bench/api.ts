import { spawn, type ChildProcess } from 'node:child_process'
import { closeSync, existsSync, mkdirSync, openSync, readFileSync } from 'node:fs'
import type { IncomingHttpHeaders } from 'node:http'
import { join } from 'node:path'
import autocannon from 'autocannon'
import { Redis } from 'ioredis'
import { freePort } from '../test/helpers/redis.js'
import { killAll, root, track } from './children.js'
import { codeVersion, describeMachine } from './machine.js'
import { envNumber, guardRun } from './memory-kit.js'
import { startRedisServer } from './redis-server.js'
import { writeDoc } from './report.js'

/**
 * `npm run bench:api` (E-api-ratio): the API built for production
 * (`npm run build`) against a bare Fastify + ioredis handler
 * (bench/api-bare.ts) on the same Redis, with autocannon in alternating
 * runs. Four processes:
 * - `bare`: the baseline;
 * - `default`: only REDIS_URL, PORT and KEY_PREFIX set, so every other
 *   setting is its default (LOG_LEVEL=info, no token, metrics served, no
 *   rate limit, no events); its output is discarded;
 * - `full`: a bearer token, METRICS_REQUIRE_AUTH, LOG_LEVEL=info written to a file;
 * - `cached`: the default settings plus READ_CACHE=true.
 * Each case below is reported with its baseline from the same rounds: the
 * median of the per-round ratios (each ratio from runs next to each other,
 * so the machine's drift cancels), the target, the API process's CPU per
 * request (from /proc) and the
 * Redis time per request from INFO commandstats (reset before every run).
 * BENCH_API_BEFORE=<path to another build's dist/src/server.js> also runs
 * that build's default, full and cached systems in the same rounds (rows
 * marked "before"). BENCH_MAX_MINUTES (default 10) caps the whole run.
 */
const SECONDS = Number(process.env.BENCH_API_SECONDS ?? 5)
const ROUNDS = Number(process.env.BENCH_API_ROUNDS ?? 3)
const CONNECTIONS = Number(process.env.BENCH_API_CONNECTIONS ?? 50)
const SERVER = join(root, 'dist/src/server.js')
const BEFORE = process.env.BENCH_API_BEFORE
const TOKEN = 'bench-token'
/**
 * The holds GETs cycle over: few enough that, with the read cache, each is
 * read again well within READ_CACHE_MAX_AGE_MS (1 s) even at a few hundred
 * requests a second, so its GETs measure the hit path (the hit ratio is reported).
 */
const PRELOADED = 100
const resultsDir = join(root, 'bench', 'results')
mkdirSync(resultsDir, { recursive: true })

type Setting = 'default' | 'full' | 'cached'
/** `bare`, a setting of this build, or `<setting>@before` (BENCH_API_BEFORE). */
type SystemName = 'bare' | Setting | `${Setting}@before`
interface Api { name: SystemName, base: string, proc: ChildProcess }
type Kind = 'POST' | 'POST idem' | 'GET'
interface Run {
  reqPerSec: number
  p50: number
  p99: number
  bad: number
  /** Redis µs per answered request (the command(s) a request runs, from INFO commandstats). */
  redisUs: number
  /** CPU time of the API process per answered request (µs). */
  cpuUs: number
  /** GET with READ_CACHE: share of answers with X-Cache: hit. */
  hitRatio?: number
}

const SYSTEM_ENV: Record<Setting, Record<string, string>> = {
  default: {},
  full: { API_TOKENS: TOKEN, METRICS_REQUIRE_AUTH: 'true', LOG_LEVEL: 'info' },
  cached: { READ_CACHE: 'true' }
}

async function startApi (name: SystemName, redisUrl: string): Promise<Api> {
  const port = await freePort()
  const setting = name === 'bare' ? undefined : name.replace('@before', '') as Setting
  const server = name.endsWith('@before') ? BEFORE! : SERVER
  const args = setting ? [server] : ['--import', 'tsx', join(root, 'bench/api-bare.ts')]
  const env = { REDIS_URL: redisUrl, PORT: String(port), ...(setting ? { KEY_PREFIX: 'bench:', ...SYSTEM_ENV[setting] } : {}) }
  // Written by the process itself, as a container runtime's log file would be; `default` writes to /dev/null.
  const fd = openSync(setting === 'default' ? '/dev/null' : join(resultsDir, `api-${name}.log`), 'w')
  const proc = spawn(process.execPath, args, { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', fd, fd] })
  closeSync(fd)
  track(proc)
  const base = `http://127.0.0.1:${port}`
  const deadline = Date.now() + 20_000
  for (;;) {
    // Any answer will do: the bare handler has no /healthz and answers 404.
    const up = await fetch(`${base}/healthz`).then(async (res) => { await res.arrayBuffer(); return true }, () => false)
    if (up) break
    if (Date.now() > deadline || proc.exitCode !== null) throw new Error(`${name} did not start (see bench/results/api-${name}.log)`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  return { name, base, proc }
}

const headers = { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` }
let seq = 0

/** CPU time (user + system) of a process so far, in µs, from /proc (Linux; 0 elsewhere). */
function cpuOf (pid: number | undefined): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '').split(' ')
    // utime and stime, fields 14 and 15 of stat (12 and 13 after the name), in clock ticks of 10 ms.
    return (Number(fields[11]) + Number(fields[12])) * 10_000
  } catch {
    return 0
  }
}

/** Sums usec and calls of the named commands in INFO commandstats. */
function commandStats (info: string, commands: string[]): { usec: number, calls: number } {
  let usec = 0
  let calls = 0
  for (const cmd of commands) {
    const m = new RegExp(`^cmdstat_${cmd}:calls=(\\d+),usec=(\\d+)`, 'm').exec(info)
    if (m) { calls += Number(m[1]); usec += Number(m[2]) }
  }
  return { usec, calls }
}

async function load (api: Api, kind: Kind, stats: Redis): Promise<Run> {
  const expected = kind === 'GET' ? 200 : 201
  let bad = 0
  let hits = 0
  let answered = 0
  const onResponse = (status: number, _body: string, _context: object, resHeaders: IncomingHttpHeaders | undefined) => {
    answered++
    if (status !== expected) bad++
    if (resHeaders?.['x-cache'] === 'hit') hits++
  }
  const idem = kind === 'POST idem'
  await stats.config('RESETSTAT')
  const cpuBefore = cpuOf(api.proc.pid)
  const result = await autocannon({
    url: api.base,
    connections: CONNECTIONS,
    duration: SECONDS,
    requests: [kind === 'GET'
      ? { method: 'GET', headers, setupRequest: (req) => ({ ...req, path: `/checkout/get-${seq++ % PRELOADED}` }), onResponse }
      : {
          method: 'POST',
          path: '/checkout',
          headers,
          setupRequest: (req) => {
            const n = seq++
            const body = JSON.stringify({ id: `b-${process.pid}-${n}`, ttlMs: 600_000 })
            return idem ? { ...req, body, headers: { ...headers, 'idempotency-key': `k-${n}` } } : { ...req, body }
          },
          onResponse
        }]
  })
  // What one request costs Redis: the script (ours) or the commands (bare) per answered request.
  const commands = api.name === 'bare' ? (kind === 'GET' ? ['get', 'pttl'] : ['set']) : ['evalsha', 'eval']
  const cpuUs = cpuOf(api.proc.pid) - cpuBefore
  const { usec } = commandStats(await stats.info('commandstats'), commands)
  const total = result.requests.total || 1
  return {
    reqPerSec: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    bad: bad + result.errors,
    redisUs: usec / total,
    cpuUs: cpuUs / total,
    ...(api.name.startsWith('cached') ? { hitRatio: hits / Math.max(1, answered) } : {})
  }
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

/** Who runs each kind of request, in the order of even rounds (odd rounds reverse it). */
const withBefore = (names: SystemName[]): SystemName[] =>
  BEFORE === undefined ? names : names.flatMap((n) => n === 'bare' ? [n] : [n, `${n}@before` as SystemName])
const PLAN: Array<[Kind, SystemName[]]> = [
  ['POST', withBefore(['bare', 'default', 'full'])],
  ['POST idem', withBefore(['default'])],
  ['GET', withBefore(['bare', 'default', 'full', 'cached'])]
]

/** A reported case: `ours` against `baseline` (both `system kind`), and the target ratio. */
interface Case { label: string, ours: string, baseline: string, target: number }
const CASES: Case[] = [
  { label: 'POST, default settings', ours: 'default POST', baseline: 'bare POST', target: 0.9 },
  { label: 'GET, default settings', ours: 'default GET', baseline: 'bare GET', target: 1.2 },
  { label: 'POST, token + metrics + info log to a file', ours: 'full POST', baseline: 'bare POST', target: 0.8 },
  { label: 'GET, token + metrics + info log to a file', ours: 'full GET', baseline: 'bare GET', target: 1.1 },
  { label: 'POST with an Idempotency-Key (default settings)', ours: 'default POST idem', baseline: 'bare POST', target: 0.7 },
  { label: 'GET with `READ_CACHE=true` vs bare', ours: 'cached GET', baseline: 'bare GET', target: 1.5 },
  { label: 'GET with `READ_CACHE=true` vs our uncached GET', ours: 'cached GET', baseline: 'default GET', target: 1.3 }
]

async function main (): Promise<void> {
  if (!existsSync(SERVER)) throw new Error(`${SERVER} is missing: run \`npm run build\` first (npm run bench:api does)`)
  const redis = await startRedisServer()
  const stats = new Redis(redis.url)
  const systems = new Map<SystemName, Api>()
  for (const name of withBefore(['bare', 'default', 'full', 'cached'])) systems.set(name, await startApi(name, redis.url))
  // `default`, `full` and `cached` share KEY_PREFIX: one preload serves the three.
  await preload(systems.get('default')!)
  await preload(systems.get('bare')!)
  // Every system reads each preloaded hold once before the runs: the cache starts
  // full and no system meets its GET path cold.
  for (const api of systems.values()) await warmUp(api)
  const runs = new Map<string, Run[]>()
  for (let round = 0; round < ROUNDS; round++) {
    for (const [kind, names] of PLAN) {
      // Alternate who goes first, so drift on a noisy machine hits all alike.
      for (const name of round % 2 === 0 ? names : [...names].reverse()) {
        const run = await load(systems.get(name)!, kind, stats)
        const key = `${name} ${kind}`
        runs.set(key, [...(runs.get(key) ?? []), run])
        process.stdout.write(`round ${round + 1} ${key}: ${Math.round(run.reqPerSec)} req/s, p50 ${run.p50} ms, p99 ${run.p99} ms, ` +
          `API CPU ${Math.round(run.cpuUs)} µs/request, Redis ${run.redisUs.toFixed(1)} µs/request${run.hitRatio !== undefined ? `, ${Math.round(run.hitRatio * 100)}% hits` : ''}` +
          `${run.bad > 0 ? `, ${run.bad} errors or unexpected statuses` : ''}\n`)
      }
    }
  }
  for (const api of systems.values()) api.proc.kill('SIGTERM')
  await stats.quit()
  await redis.destroy()

  const pick = (key: string) => {
    const rs = runs.get(key) ?? []
    const hits = rs.map((r) => r.hitRatio).filter((h): h is number => h !== undefined)
    return {
      runs: rs,
      rps: median(rs.map((r) => r.reqPerSec)),
      cpuUs: median(rs.map((r) => r.cpuUs)),
      p50: median(rs.map((r) => r.p50)),
      p99: median(rs.map((r) => r.p99)),
      redisUs: median(rs.map((r) => r.redisUs)),
      bad: rs.reduce((a, r) => a + r.bad, 0),
      hits: hits.length > 0 ? ` (${Math.round(median(hits) * 100)}% hits)` : ''
    }
  }
  const row = (c: Case, suffix: '' | '@before') => {
    const ours = c.ours.replace(' ', `${suffix} `)
    // "ours vs our uncached GET" compares within one build.
    const baseline = c.baseline.startsWith('bare') ? c.baseline : c.baseline.replace(' ', `${suffix} `)
    const o = pick(ours)
    const b = pick(baseline)
    // Each round's ratio from runs next to each other, then the median of those.
    const ratio = median(o.runs.map((r, i) => r.reqPerSec / (b.runs[i]?.reqPerSec ?? NaN)))
    const verdict = ratio >= c.target ? 'met' : `missed by ${Math.round((1 - ratio / c.target) * 100)}%`
    const label = suffix === '' ? c.label : `${c.label} (before)`
    return `| ${label} | ${Math.round(o.rps)}${o.hits} | ${Math.round(o.cpuUs)} | ${o.redisUs.toFixed(1)} | ${Math.round(b.rps)} | ${Math.round(b.cpuUs)} | ` +
      `${b.redisUs.toFixed(1)} | **${ratio.toFixed(2)}×** | ≥ ${c.target}× ${verdict} | ${o.p50} / ${o.p99} | ${o.bad} / ${b.bad} |`
  }
  const rows = CASES.flatMap((c) => BEFORE === undefined ? [row(c, '')] : [row(c, ''), row(c, '@before')])
  const machine = describeMachine()
  const section = [
    `Command: \`npm run bench:api\` (${ROUNDS} alternating rounds of ${SECONDS} s per system and case, ${CONNECTIONS} connections, medians).`,
    `Run on ${new Date().toISOString().slice(0, 10)}, ${codeVersion()}; ${machine.text}.`,
    '',
    'Systems (all built with `npm run build`, on one Redis): **default**, the API with only `REDIS_URL`, `PORT` and `KEY_PREFIX` set ' +
    '(`LOG_LEVEL=info` to /dev/null, no token, metrics served, no rate limit, no events); **full**, a bearer token, `METRICS_REQUIRE_AUTH=true` ' +
    'and `LOG_LEVEL=info` written to a file; **cached**, the default settings plus `READ_CACHE=true` (its GETs hit after the first read of each id ' +
    'within `READ_CACHE_MAX_AGE_MS`, 1 s); **bare**, one `SET NX PX` (POST) or a pipelined `GET` + `PTTL` (GET) on Fastify + ioredis, without ' +
    'schemas, logging, auth or metrics. GETs cycle over 100 preloaded holds (with the read cache, each is read again within its max age). Redis µs is the time Redis spent in the request\'s commands ' +
    '(`EVALSHA`; bare: `SET`, or `GET` + `PTTL`) per answered request, from `INFO commandstats` reset before each run.',
    '',
    'Ratio: the median of the per-round ratios of req/s (runs next to each other). CPU µs: the API process\'s CPU time (user + system, /proc) ' +
    'per answered request (on a busy machine it moves with the load too).' +
    (BEFORE === undefined ? '' : ' Rows marked (before) run the previous build in the same rounds, against the same baselines.'),
    '',
    '| case | ours req/s | CPU µs | Redis µs | baseline req/s | CPU µs | Redis µs | ratio | target | ours p50 / p99 ms | errors (ours / baseline) |',
    '|---|---|---|---|---|---|---|---|---|---|---|',
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
