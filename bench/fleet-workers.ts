import { spawnNode, type NodeChild } from './children.js'
import { BULLMQ_QUEUE, BULLMQ_WORKER_CONNECTION } from './systems/bullmq.js'
import type { Cell } from './systems/types.js'
import { adminClient, clientList, sleep, until, waitForReadyLine } from './util.js'

/**
 * Worker fleets for bench:fleet: the same processes, environment and
 * readiness checks as bench/systems/ours.ts and bullmq.ts, but with a
 * start-up timeout that grows with the fleet: eight `node --import tsx`
 * processes starting at once on a busy 2-core machine can take longer than
 * the 20 s those allow.
 */
const readyTimeoutMs = (n: number) => Math.min(120_000, 20_000 + 10_000 * n)

/** n checkout-expiry worker processes (workers/expiry-worker.ts, handler bench/handler.ts), ready once each has subscribed to expired events. */
export async function startExpiryFleet (cell: Cell, n: number): Promise<NodeChild[]> {
  const env = {
    REDIS_URL: cell.redisUrl,
    EXPIRY_HANDLERS: 'bench/handler.ts',
    LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? 'warn',
    BENCH_RECORD_FILE: cell.recordFile,
    // Metrics stay on, as in production; each worker on a free port.
    WORKER_HTTP_PORT: '0',
    ...cell.workerEnv
  }
  const children = Array.from({ length: n }, () => spawnNode('workers/expiry-worker.ts', env, cell.logFile()))
  const admin = adminClient(cell.port, 'bench:fleet-ready')
  try {
    await until(async () => {
      for (const c of children) {
        if (c.proc.exitCode !== null) throw new Error(`expiry worker exited (${c.proc.exitCode}):\n${c.output()}`)
      }
      const subscribed = (await clientList(admin))
        .filter((c) => c.name === 'checkout-expiry:subscriber' && Number(c.psub) > 0).length
      const flags = (await admin.config('GET', 'notify-keyspace-events') as unknown as string[])[1] ?? ''
      return subscribed >= n && flags.includes('E') && (flags.includes('x') || flags.includes('A'))
    }, readyTimeoutMs(n), `${n} checkout-expiry workers to subscribe`)
    await sleep(300)
  } finally {
    admin.disconnect()
  }
  return children
}

/** n BullMQ worker processes (bench/workers/bullmq-worker.ts, concurrency 50), ready once each has printed "ready". */
export async function startBullmqFleet (cell: Cell, n: number): Promise<NodeChild[]> {
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
}
