import type { FastifyInstance } from 'fastify'
import { json } from './app.js'

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
