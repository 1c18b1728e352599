import { Worker } from 'bullmq'
import { recordFile, runHandler } from '../record.js'

/**
 * A BullMQ worker process: runs the handler for each delayed job that comes
 * due. The job says when it was due: its timestamp plus its delay.
 */
const file = recordFile()
const worker = new Worker(process.env.BENCH_QUEUE ?? '', async (job) => {
  const now = Date.now()
  await runHandler(file, {
    id: job.id ?? '',
    attempt: job.attemptsMade + 1,
    deadline: job.timestamp + (job.opts.delay ?? 0),
    now,
    pid: process.pid
  })
}, {
  connection: {
    host: '127.0.0.1',
    port: Number(process.env.BENCH_REDIS_PORT),
    maxRetriesPerRequest: null,
    connectionName: process.env.BENCH_CONNECTION_NAME ?? 'bench:bullmq-worker'
  },
  concurrency: Number(process.env.BENCH_CONCURRENCY ?? 50)
})
worker.on('error', () => {})
await worker.waitUntilReady()
process.stdout.write('ready\n')

let closing = false
const shutdown = () => {
  if (closing) return
  closing = true
  void worker.close().finally(() => process.exit(0))
}
process.once('SIGTERM', shutdown)
process.once('SIGINT', shutdown)
