import type { Redis } from 'ioredis'
import type { NodeChild } from '../children.js'

/**
 * What the benchmark needs from each system under test: a producer that
 * schedules items in the benchmark process, worker processes that run the
 * handler, and a way to cut those workers off from Redis (scenario C).
 */
export type SystemName = 'ours' | 'keyspace' | 'bullmq'

export interface Hold {
  id: string
  /** Epoch ms the item should come due. */
  deadline: number
}

/** Where one system × scenario run takes place. */
export interface Cell {
  redisUrl: string
  port: number
  /** The JSON-lines file the workers' handlers append to. */
  recordFile: string
  /** A new file for the output of the next worker process. */
  logFile: () => string
  /** Environment every worker process of the cell gets (e.g. BENCH_HANDLER_MS). */
  workerEnv: Record<string, string>
  /** BENCH_CPU_PROF=1: where checkout-expiry's workers write their CPU profiles. */
  profileDir?: string
}

export interface CreateReport {
  /** When each item is due, as the system scheduled it (epoch ms). */
  deadlines: Map<string, number>
  /** Smallest time between sending an item and its deadline. */
  minLeadMs: number
}

export const emptyReport = (): CreateReport => ({ deadlines: new Map(), minLeadMs: Infinity })

/** Time from `now` to a hold's deadline, as a whole TTL or delay of at least 1 ms. */
export const leadTime = (deadline: number, now = Date.now()): number => Math.max(1, Math.round(deadline - now))

/** Records that an item was scheduled `leadMs` ahead, due at `deadline`. */
export function noteScheduled (report: CreateReport, id: string, leadMs: number, deadline: number): void {
  report.minLeadMs = Math.min(report.minLeadMs, leadMs)
  report.deadlines.set(id, deadline)
}

export interface Producer {
  create: (holds: Hold[]) => Promise<CreateReport>
  /** What the system's own records say about some items (for lost ones: where they got stuck). */
  describe: (ids: string[]) => Promise<Record<string, string>>
  close: () => Promise<void>
}

export interface BenchSystem {
  readonly name: SystemName
  readonly label: string
  /** What scenario C does to this system's workers, for the report. */
  readonly disruption: string
  producer: (cell: Cell) => Promise<Producer>
  /** Starts n worker processes and resolves once they are ready to run handlers. */
  startWorkers: (cell: Cell, n: number) => Promise<NodeChild[]>
  /** One round of cutting the workers off; returns how many connections were killed. */
  disrupt: (admin: Redis) => Promise<number>
}
