import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Cluster } from 'ioredis'
import type { Config } from '../config.js'
import { Errors } from '../errors.js'
import { readOrderEvents } from '../events/history.js'
import { toResponse } from '../routes/checkout.js'
import { readActivity, readRuns, readWorkers, trackAlertConditions } from '../store/activity.js'
import {
  countDueWithin, deadlineHistogram, earliestDeadline, InvalidHoldCursorError, pageHoldsByDeadline, readJobRecord
} from '../store/admin-queries.js'
import { getCheckout } from '../store/checkout-store.js'
import { countDeadLetters } from '../store/dead-letters.js'
import { readQueueStats } from '../store/stats.js'
import { nodeKey } from '../expiry/cluster-nodes.js'
import { alertConditions, expiredEventsOn, LATENESS_ALERT_MS, latenessQuantile, masterHealth, sumLateness, withForDelays, workerStaleMs } from './alerts.js'
import {
  adminErrors, HealthResponse, queryInt, HistogramQuery, HistogramResponse, HoldsQuery, HoldsResponse, IdParams, SummaryResponse, TimelineResponse
} from './schemas.js'

/** The read-only admin routes: summary, deadlines, holds, one hold's timeline, health (docs/dashboard.md). */
const MINUTE = 60_000
const admin = { access: 'admin' } as const

const overviewRoutes: FastifyPluginAsyncTypebox<{ config: Config }> = async (app, { config }) => {
  const store = app.store

  app.get('/admin/summary', {
    config: admin,
    schema: { summary: 'Pending holds, what expires soon, outcomes and lateness of the last hour', tags: ['admin'], response: { 200: SummaryResponse, 503: adminErrors[503] } }
  }, async () => {
    const [due, queue, activity] = await Promise.all([
      countDueWithin(store, [MINUTE, 5 * MINUTE, 60 * MINUTE]), readQueueStats(store), readActivity(store, 60)
    ])
    const sum = (pick: (m: (typeof activity.minutes)[number]) => number) => activity.minutes.reduce((a, m) => a + pick(m), 0)
    const hour = sumLateness(activity.minutes)
    return {
      now: due.now,
      pending: queue.pending,
      overdue: due.overdue,
      expiring: { next1m: due.within[0]?.count ?? 0, next5m: due.within[1]?.count ?? 0, next60m: due.within[2]?.count ?? 0 },
      jobs: { due: queue.jobs.due, running: queue.jobs.running, retrying: Math.max(0, queue.jobs.total - queue.jobs.due - queue.jobs.running) },
      deadLetters: queue.deadLetters,
      lastHour: {
        handled: sum((m) => m.outcomes.handled),
        retried: sum((m) => m.outcomes.retried),
        dead: sum((m) => m.outcomes.dead),
        latenessP50Ms: latenessQuantile(hour, 0.5) ?? null,
        latenessP99Ms: latenessQuantile(hour, 0.99) ?? null
      },
      latenessTargetMs: LATENESS_ALERT_MS,
      minutes: activity.minutes.map((m) => ({
        at: m.at,
        ...m.runs,
        latenessP50Ms: latenessQuantile(m.lateness, 0.5) ?? null,
        latenessP99Ms: latenessQuantile(m.lateness, 0.99) ?? null
      }))
    }
  })

  app.get('/admin/deadlines', {
    config: admin,
    schema: { summary: 'Upcoming deadlines: pending holds per time bucket', tags: ['admin'], querystring: HistogramQuery, response: { 200: HistogramResponse, 503: adminErrors[503] } }
  }, async (request) => await deadlineHistogram(store, {
    bucketMs: queryInt(request.query.bucketMs, MINUTE, 1000, 86_400_000), buckets: queryInt(request.query.buckets, 60, 1, 120)
  }))

  app.get('/admin/holds', {
    config: admin,
    schema: {
      summary: 'Pending holds by deadline, all or those whose id starts with a prefix, a page at a time',
      tags: ['admin'],
      querystring: HoldsQuery,
      response: { 200: HoldsResponse, 400: adminErrors[400], 503: adminErrors[503] }
    }
  }, async (request) => {
    const { prefix, cursor, limit } = request.query
    try {
      const page = await pageHoldsByDeadline(store, { prefix, cursor, limit: queryInt(limit, 50, 1, 200) })
      return { ...page, next: page.next ?? null }
    } catch (err) {
      if (err instanceof InvalidHoldCursorError) throw new Errors.INVALID_CURSOR(err.message)
      throw err
    }
  })

  app.get('/admin/holds/:id/timeline', {
    config: admin,
    schema: {
      summary: "One order's timeline: lifecycle events, handler runs and its expiry job",
      tags: ['admin'],
      params: IdParams,
      response: { 200: TimelineResponse, 503: adminErrors[503] }
    }
  }, async (request) => {
    const { id } = request.params
    const view = await getCheckout(store, id).catch((err: unknown) => {
      if ((err as { code?: unknown }).code === 'CHECKOUT_NOT_FOUND') return undefined
      throw err
    })
    const [events, runs, job] = await Promise.all([
      readOrderEvents(store, id), readRuns(store, id), view ? readJobRecord(store, id, view.generation) : undefined
    ])
    const entries = [
      ...events.map((e) => ({ at: Date.parse(e.at), kind: e.type, detail: eventDetail(e) })),
      ...runs.map((r) => ({
        at: r.at,
        kind: 'run',
        detail: `attempt ${r.attempt} by worker ${r.worker.slice(0, 8)} (fencing token ${r.worker.slice(0, 8)}#${r.attempt}), ` +
          `${r.source}, ${r.outcome} in ${r.durationMs} ms${r.error ? `: ${r.error}` : ''}`
      }))
    ].sort((a, b) => a.at - b.at)
    return {
      id,
      hold: view ? toResponse(view) : null,
      job: job ? { ...job, holder: job.holder ?? null, lastError: job.lastError ?? null, diedAt: job.diedAt ?? null } : null,
      entries
    }
  })

  app.get('/admin/health', {
    config: admin,
    schema: { summary: 'Workers, Redis settings, sweep lag and alert states', tags: ['admin'], response: { 200: HealthResponse, 503: adminErrors[503] } }
  }, async () => {
    const [{ now, workers }, activity, deadLetters, earliest, events, eviction] = await Promise.all([
      readWorkers(store), readActivity(store, 15), countDeadLetters(store), earliestDeadline(store),
      configGet(app.redis, 'notify-keyspace-events'), configGet(app.redis, 'maxmemory-policy')
    ])
    const staleMs = workerStaleMs(config.EXPIRY_LEASE_MS)
    const health = workers.map((w) => {
      const ageMs = Math.max(0, now - w.at)
      return { ...w, token: w.token.slice(0, 8), masters: w.masters ?? [], ageMs, alive: ageMs <= staleMs }
    })
    const conditions = alertConditions({
      deadLetters, minutes: activity.minutes, workers: health, keyspaceEvents: events === undefined ? undefined : expiredEventsOn(events)
    })
    const since = await trackAlertConditions(store, now, new Map(conditions.map((c) => [c.name, c.holds])))
    const redis = app.redis
    const masters = redis instanceof Cluster ? redis.nodes('master').map(nodeKey).sort() : [nodeKey(redis)]
    return {
      now,
      workers: health,
      masters: masterHealth(masters, health, !(redis instanceof Cluster)),
      keyspaceEvents: events ?? null,
      evictionPolicy: eviction ?? null,
      sweepLagMs: earliest === undefined ? 0 : Math.max(0, now - earliest),
      alerts: withForDelays(conditions, since, now)
    }
  })
}

function eventDetail (e: Awaited<ReturnType<typeof readOrderEvents>>[number]): string {
  switch (e.type) {
    case 'created': return `generation ${e.generation}, expires ${e.expiresAt} (ttl ${e.ttlMs} ms)`
    case 'extended': return `now expires ${e.expiresAt}`
    case 'expired': return `deadline was ${e.expiresAt}`
    case 'dead': return `after ${e.attempts} attempts: ${e.lastError}`
    default: return `generation ${e.generation}`
  }
}

/** One CONFIG GET value; undefined where CONFIG is renamed or refused (managed Redis). */
async function configGet (redis: { config: (op: 'GET', name: string) => Promise<unknown> }, name: string): Promise<string | undefined> {
  try {
    const reply = await redis.config('GET', name) as string[]
    return reply[1]
  } catch {
    return undefined
  }
}

export default overviewRoutes
