import type { FastifyInstance } from 'fastify'
import type { Test } from 'tap'
import { buildApp } from '../../src/app.js'
import type { Config } from '../../src/config.js'
import type { ExpiryWorker } from '../../src/expiry/worker.js'
import { json, testConfig } from './app.js'
import type { TestCluster } from './cluster.js'
import { clusterWorker, recorder } from './worker.js'

type Recorder = ReturnType<typeof recorder>

/** What the cluster tests run against: the API and two recorded workers on the cluster, one new prefix, 16 shards. */
export async function clusterStack (t: Test, cluster: TestCluster, url: string): Promise<{
  config: Config, app: FastifyInstance, recs: [Recorder, Recorder], workers: ExpiryWorker[]
}> {
  const config = testConfig(url, { KEY_SHARDS: '16' })
  const app = await buildApp({ config, redis: cluster.client({ api: true }) })
  t.teardown(() => app.close())
  await app.ready()
  const recs: [Recorder, Recorder] = [recorder(), recorder()]
  const workers = await Promise.all(recs.map(async (r) => await clusterWorker(config, cluster, [r.handler])))
  t.teardown(async () => await Promise.all(workers.map(async (w) => await w.close())))
  return { config, app, recs, workers }
}

/**
 * A steady stream of POST /checkout through the API while a test breaks the
 * cluster, recording which holds the API acknowledged and when requests
 * failed, so the test can measure the API's error window around a fault.
 */
export interface WriteLoop {
  /** Ids the API answered 201 for. */
  acked: string[]
  /** Requests that did not get a 201: when sent, how long they took, the status. */
  failures: Array<{ id: string, sentAt: number, ms: number, status: number }>
  /** Stops sending; resolves once every request in flight has answered. */
  stop: () => Promise<void>
  /**
   * Around a fault at `faultAt`: when writes were back (the last answer to
   * a write that failed or waited longer than 250 ms, 0 when none did), the
   * span from the first failure's send to the last failure's answer, and
   * the longest a successful write waited for its answer.
   */
  window: (faultAt: number) => { backAfterMs: number, errorSpanMs: number, failed: number, slowestMs: number }
}

/** A write that failed or took longer than this was disturbed by the fault. */
const DISTURBED_MS = 250

export function startWriteLoop (app: FastifyInstance, opts: { prefix: string, everyMs: number, ttlMs: (n: number) => number, max: number }): WriteLoop {
  const acked: string[] = []
  const failures: WriteLoop['failures'] = []
  const results: Array<{ sentAt: number, answeredAt: number, ok: boolean }> = []
  const inFlight = new Set<Promise<void>>()
  let n = 0
  const send = () => {
    if (n >= opts.max) return
    const id = `${opts.prefix}-${n}`
    const ttlMs = opts.ttlMs(n++)
    const sentAt = Date.now()
    const p = app.inject({ method: 'POST', url: '/checkout', ...json({ id, ttlMs }) }).then((res) => res.statusCode, () => 0).then((status) => {
      const ok = status === 201
      results.push({ sentAt, answeredAt: Date.now(), ok })
      if (ok) acked.push(id)
      else failures.push({ id, sentAt, ms: Date.now() - sentAt, status })
    })
    inFlight.add(p)
    void p.finally(() => inFlight.delete(p))
  }
  const timer = setInterval(send, opts.everyMs)
  return {
    acked,
    failures,
    async stop () {
      clearInterval(timer)
      await Promise.all([...inFlight])
    },
    window (faultAt) {
      const after = results.filter((r) => r.sentAt >= faultAt - DISTURBED_MS)
      const disturbed = after.filter((r) => !r.ok || r.answeredAt - r.sentAt > DISTURBED_MS)
      const slowestMs = Math.max(0, ...results.filter((r) => r.ok).map((r) => r.answeredAt - r.sentAt))
      if (failures.length === 0 && disturbed.length === 0) return { backAfterMs: 0, errorSpanMs: 0, failed: 0, slowestMs }
      const first = Math.min(...failures.map((f) => f.sentAt))
      const last = Math.max(...failures.map((f) => f.sentAt + f.ms))
      return {
        backAfterMs: Math.max(0, ...disturbed.map((r) => r.answeredAt)) - faultAt,
        errorSpanMs: failures.length === 0 ? 0 : last - first,
        failed: failures.length,
        slowestMs
      }
    }
  }
}
