import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import type { FastifyInstance } from 'fastify'
import type * as AppModule from '../src/app.js'
import type * as ConfigModule from '../src/config.js'
import type * as LoggerModule from '../src/logger.js'
import { killAll, root } from './children.js'
import { startRedisServer } from './redis-server.js'

/**
 * `node --import tsx bench/api-cpu.ts [dist dir …]`: the CPU time (user +
 * system, process.cpuUsage) the API's request path takes per request, with
 * `inject()` (no sockets, no load generator) and the log at `info` to
 * /dev/null: POST /checkout, GET /checkout/:id, and GET hits with
 * READ_CACHE=true. CPU time, not wall time, so a busy machine changes it
 * less than it changes req/s. Each build given (default: this one's dist/)
 * runs the same requests in alternating rounds; run `npm run build` first.
 */
const REQUESTS = Number(process.env.BENCH_CPU_REQUESTS ?? 5000)
const ROUNDS = Number(process.env.BENCH_CPU_ROUNDS ?? 3)
const HOT = 100

interface Build { dir: string, app: (env: Record<string, string>) => Promise<FastifyInstance> }

async function loadBuild (dir: string, redisUrl: string): Promise<Build> {
  const { buildApp } = await import(pathToFileURL(join(dir, 'src/app.js')).href) as typeof AppModule
  const { loadConfig } = await import(pathToFileURL(join(dir, 'src/config.js')).href) as typeof ConfigModule
  const { createLogger } = await import(pathToFileURL(join(dir, 'src/logger.js')).href) as typeof LoggerModule
  const { pino } = await import('pino')
  return {
    dir,
    app: async (env) => {
      const config = loadConfig({ REDIS_URL: redisUrl, KEY_PREFIX: 'cpu:', LOG_LEVEL: 'info', ...env })
      const logger = createLogger('info', 'checkout-api', pino.destination({ dest: '/dev/null', sync: false }))
      const app = await buildApp({ config, logger })
      await app.ready()
      return app
    }
  }
}

/** CPU µs per call of `fn` over REQUESTS calls, 50 in flight at a time. */
async function cpuPer (fn: (i: number) => Promise<unknown>): Promise<number> {
  const start = process.cpuUsage()
  for (let i = 0; i < REQUESTS; i += 50) await Promise.all(Array.from({ length: 50 }, async (_v, j) => await fn(i + j)))
  const used = process.cpuUsage(start)
  return (used.user + used.system) / REQUESTS
}

let seq = 0
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0

async function main (): Promise<void> {
  const dirs = process.argv.slice(2)
  const redis = await startRedisServer()
  const builds = await Promise.all((dirs.length > 0 ? dirs : [join(root, 'dist')]).map(async (dir) => await loadBuild(dir, redis.url)))
  const results = new Map<string, number[]>()
  const record = (key: string, us: number) => results.set(key, [...(results.get(key) ?? []), us])
  for (let round = 0; round < ROUNDS; round++) {
    for (const build of round % 2 === 0 ? builds : [...builds].reverse()) {
      const app = await build.app({})
      const cached = await build.app({ READ_CACHE: 'true' })
      for (let i = 0; i < HOT; i++) {
        await app.inject({ method: 'POST', url: '/checkout', payload: { id: `hot-${round}-${i}`, ttlMs: 600_000 } })
        await cached.inject({ method: 'GET', url: `/checkout/hot-${round}-${i}` })
      }
      // Tracking is on once the first PING after CLIENT TRACKING is answered.
      await new Promise((resolve) => setTimeout(resolve, 300))
      record(`${build.dir} POST`, await cpuPer(async () => await app.inject({ method: 'POST', url: '/checkout', payload: { id: `c-${seq++}`, ttlMs: 600_000 } })))
      record(`${build.dir} GET`, await cpuPer(async (i) => await app.inject({ method: 'GET', url: `/checkout/hot-${round}-${i % HOT}` })))
      let hits = 0
      record(`${build.dir} GET hit`, await cpuPer(async (i) => {
        const res = await cached.inject({ method: 'GET', url: `/checkout/hot-${round}-${i % HOT}` })
        if (res.headers['x-cache'] === 'hit') hits++
      }))
      process.stdout.write(`round ${round + 1} ${build.dir}: ${['POST', 'GET', 'GET hit'].map((k) => `${k} ${Math.round(results.get(`${build.dir} ${k}`)!.at(-1)!)} µs`).join(', ')} (${Math.round(100 * hits / REQUESTS)}% hits)\n`)
      await app.close()
      await cached.close()
    }
  }
  await redis.destroy()
  process.stdout.write('\n| build | POST CPU µs/request | GET | GET hit (READ_CACHE) |\n|---|---|---|---|\n')
  for (const build of builds) {
    const m = (k: string) => Math.round(median(results.get(`${build.dir} ${k}`) ?? []))
    process.stdout.write(`| ${build.dir} | ${m('POST')} | ${m('GET')} | ${m('GET hit')} |\n`)
  }
}

try {
  await main()
} finally {
  killAll()
}
