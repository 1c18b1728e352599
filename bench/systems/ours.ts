import { loadConfig } from '../../src/config.js'
import type { KeyFormat } from '../../src/keys.js'
import { closeRedis } from '../../src/redis/connection.js'
import { createHold, getCheckout } from '../../src/store/checkout-store.js'
import { createStoreContext } from '../../src/store/context.js'
import { openKeyspace } from '../../src/store/layout.js'
import { spawnNode } from '../children.js'
import { benchRedis } from '../memory-kit.js'
import { adminClient, clientList, inChunks, readyTimeoutMs, sleep, until } from '../util.js'
import { emptyReport, leadTime, noteScheduled, type BenchSystem } from './types.js'

/**
 * checkout-expiry itself: holds made with the store's createHold, expired by
 * real `workers/expiry-worker.ts` processes whose handler is bench/handler.ts.
 */
const HANDLER = 'bench/handler.ts'
const IN_FLIGHT = 500

export const ours: BenchSystem = {
  name: 'ours',
  label: 'checkout-expiry',
  disruption: '`CLIENT KILL TYPE pubsub` every 20 ms for 3 s: its subscriber connection (the command connection stays up)',

  async producer (cell) {
    // The same defaults (prefix, shards, retention) the worker processes read.
    const config = loadConfig({ ...process.env, REDIS_URL: cell.redisUrl })
    const redis = benchRedis(cell.redisUrl, 'bench:producer')
    // Records the layout (KEY_FORMAT) for the fresh Redis, as the API would; the workers, started next, follow it.
    const keys = await openKeyspace(redis, config.KEY_PREFIX, config.KEY_SHARDS, console, config.KEY_FORMAT as KeyFormat)
    const ctx = createStoreContext(redis, keys, config.CHECKOUT_RESULT_RETENTION_MS)
    return {
      async create (holds) {
        const report = emptyReport()
        await inChunks(holds, IN_FLIGHT, async (chunk) => {
          await Promise.all(chunk.map(async (hold) => {
            const ttlMs = leadTime(hold.deadline)
            const view = await createHold(ctx, { id: hold.id, ttlMs })
            noteScheduled(report, hold.id, ttlMs, view.expiresAt)
          }))
        })
        return report
      },
      async describe (ids) {
        const out: Record<string, string> = {}
        for (const id of ids) {
          const view = await getCheckout(ctx, id).catch((err: unknown) => ({ error: err instanceof Error ? err.message : String(err) }))
          out[id] = JSON.stringify(view)
        }
        return out
      },
      close: async () => await closeRedis(redis)
    }
  },

  async startWorkers (cell, n) {
    const env = {
      REDIS_URL: cell.redisUrl,
      EXPIRY_HANDLERS: HANDLER,
      // BENCH_LOG_LEVEL=debug keeps the worker's per-job log lines in bench/results/ (slower).
      LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? 'warn',
      BENCH_RECORD_FILE: cell.recordFile,
      // Metrics stay on, as in production; each worker on a free port.
      WORKER_HTTP_PORT: '0',
      ...cell.workerEnv
    }
    // A profile is written when the process exits normally: the run stops workers with SIGTERM.
    const nodeArgs = cell.profileDir ? ['--cpu-prof', `--cpu-prof-dir=${cell.profileDir}`] : []
    const admin = adminClient(cell.port)
    // Workers already running (a replacement, a joiner) are subscribed too, and may leave meanwhile: count new connections only.
    const subscribers = async () => (await clientList(admin)).filter((c) => c.name === 'checkout-expiry:subscriber' && Number(c.psub) > 0).map((c) => c.id)
    const before = new Set(await subscribers().catch((err: unknown) => {
      admin.disconnect()
      throw err
    }))
    const children = Array.from({ length: n }, () => spawnNode('workers/expiry-worker.ts', env, cell.logFile(), nodeArgs))
    try {
      // With LOG_LEVEL=warn there is no "ready" line: a worker is ready once its
      // subscriber is subscribed and expired events are enabled, which is
      // right before its sweeper starts.
      await until(async () => {
        for (const c of children) {
          if (c.proc.exitCode !== null) throw new Error(`expiry worker exited (${c.proc.exitCode}):\n${c.output()}`)
        }
        const flags = (await admin.config('GET', 'notify-keyspace-events') as unknown as string[])[1] ?? ''
        return (await subscribers()).filter((id) => !before.has(id)).length >= n && flags.includes('E') && (flags.includes('x') || flags.includes('A'))
      }, readyTimeoutMs(n), 'checkout-expiry workers to subscribe')
      await sleep(300)
    } finally {
      admin.disconnect()
    }
    return children
  },

  async disrupt (admin) {
    return Number(await admin.call('CLIENT', 'KILL', 'TYPE', 'pubsub'))
  }
}
