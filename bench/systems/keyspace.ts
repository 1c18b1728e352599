import { Redis } from 'ioredis'
import { spawnNode } from '../children.js'
import { inChunks, waitForReadyLine } from '../util.js'
import { emptyReport, leadTime, noteScheduled, type BenchSystem } from './types.js'

/**
 * The original design: `SET key v PX ttl NX` and subscribers on
 * `__keyevent@0__:expired`. The event carries only the key name, so the
 * deadline stays on the benchmark side; every subscriber runs the handler
 * for every event it receives.
 */
const KEY_PREFIX = 'bench:ks:'
const PIPELINE = 1000

export const keyspace: BenchSystem = {
  name: 'keyspace',
  label: 'keyspace events',
  disruption: '`CLIENT KILL TYPE pubsub` every 20 ms for 3 s: its subscriber connection',

  async producer (cell) {
    const redis = new Redis(cell.redisUrl, { connectionName: 'bench:keyspace-producer', protocol: 2, maxRetriesPerRequest: null })
    redis.on('error', () => {})
    return {
      async create (holds) {
        const report = emptyReport()
        await inChunks(holds, PIPELINE, async (chunk) => {
          const pipeline = redis.pipeline()
          for (const hold of chunk) {
            const now = Date.now()
            const ttlMs = leadTime(hold.deadline, now)
            // Redis starts the TTL when the command arrives, a little after `now`:
            // lateness is measured against the earlier time, so it errs high by
            // the pipeline's transit time (well under a millisecond per key here).
            noteScheduled(report, hold.id, ttlMs, now + ttlMs)
            pipeline.set(KEY_PREFIX + hold.id, '1', 'PX', ttlMs, 'NX')
          }
          await pipeline.exec()
        })
        return report
      },
      async describe (ids) {
        const out: Record<string, string> = {}
        for (const id of ids) out[id] = `pttl ${await redis.pttl(KEY_PREFIX + id)}`
        return out
      },
      async close () {
        await redis.quit().catch(() => redis.disconnect())
      }
    }
  },

  async startWorkers (cell, n) {
    const env = { BENCH_REDIS_URL: cell.redisUrl, BENCH_KEY_PREFIX: KEY_PREFIX, BENCH_RECORD_FILE: cell.recordFile, ...cell.workerEnv }
    const children = Array.from({ length: n }, () => spawnNode('bench/workers/keyspace-subscriber.ts', env, cell.logFile()))
    await waitForReadyLine(children, 20_000)
    return children
  },

  async disrupt (admin) {
    return Number(await admin.call('CLIENT', 'KILL', 'TYPE', 'pubsub'))
  }
}
