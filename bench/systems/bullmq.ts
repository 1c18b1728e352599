import { Queue } from 'bullmq'
import { spawnNode } from '../children.js'
import { clientList, inChunks, readyTimeoutMs, waitForReadyLine } from '../util.js'
import { emptyReport, leadTime, noteScheduled, type BenchSystem } from './types.js'

/**
 * BullMQ delayed jobs: one job per hold, added with `delay` and the hold's id
 * as `jobId`, run by a BullMQ Worker (concurrency 50) in each worker process.
 */
export const BULLMQ_QUEUE = 'bench-expiry'
/** CLIENT SETNAME of a worker's command connection; BullMQ names its blocking connection `bull:<queue, base64>`. */
export const BULLMQ_WORKER_CONNECTION = 'bench:bullmq-worker'
const BULK = 500

export const bullmq: BenchSystem = {
  name: 'bullmq',
  label: 'BullMQ delayed jobs',
  disruption: '`CLIENT KILL ID` of both connections of its Worker (command and blocking), every 20 ms for 3 s',

  async producer (cell) {
    const queue = new Queue(BULLMQ_QUEUE, {
      connection: { host: '127.0.0.1', port: cell.port, maxRetriesPerRequest: null, connectionName: 'bench:bullmq-producer' }
    })
    queue.on('error', () => {})
    await queue.waitUntilReady()
    return {
      async create (holds) {
        const report = emptyReport()
        // addBulk is queue.add for many jobs in one round trip.
        await inChunks(holds, BULK, async (chunk) => {
          const jobs = chunk.map((hold) => {
            const now = Date.now()
            const delay = leadTime(hold.deadline, now)
            noteScheduled(report, hold.id, delay, now + delay)
            return { name: 'expire', data: {}, opts: { delay, jobId: hold.id, removeOnComplete: true } }
          })
          await queue.addBulk(jobs)
        })
        return report
      },
      async describe (ids) {
        const out: Record<string, string> = {}
        for (const id of ids) {
          const job = await queue.getJob(id)
          out[id] = JSON.stringify({
            state: await queue.getJobState(id),
            attemptsStarted: job?.attemptsStarted,
            processedOn: job?.processedOn,
            stalledCounter: job?.stalledCounter
          })
        }
        return out
      },
      async close () {
        await queue.close()
      }
    }
  },

  async startWorkers (cell, n) {
    const env = {
      BENCH_REDIS_PORT: String(cell.port),
      BENCH_QUEUE: BULLMQ_QUEUE,
      BENCH_CONNECTION_NAME: BULLMQ_WORKER_CONNECTION,
      BENCH_CONCURRENCY: '50',
      BENCH_RECORD_FILE: cell.recordFile,
      ...cell.workerEnv
    }
    const children = Array.from({ length: n }, () => spawnNode('bench/workers/bullmq-worker.ts', env, cell.logFile()))
    await waitForReadyLine(children, readyTimeoutMs(n))
    return children
  },

  async disrupt (admin) {
    const ids = (await clientList(admin))
      .filter((c) => c.name === BULLMQ_WORKER_CONNECTION || c.name?.startsWith('bull:'))
      .map((c) => c.id)
      .filter((id): id is string => id !== undefined)
    let killed = 0
    for (const id of ids) killed += Number(await admin.call('CLIENT', 'KILL', 'ID', id).catch(() => 0))
    return killed
  }
}
