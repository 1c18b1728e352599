import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client'
import type { ReadCacheMetrics } from '../store/read-cache.js'

/**
 * Every metric the API exposes, on a registry of its own (one per app, so
 * two apps in one process, as in tests, never share counts). The app gets
 * it passed in like the logger; the metrics plugin records into it.
 */
export type HoldEvent = 'created' | 'conflicted' | 'completed' | 'cancelled' | 'extended'

export interface ApiMetrics {
  readonly registry: Registry
  /** A finished request. `route` is the route pattern (`/checkout/:id`), never the raw URL. */
  request: (method: string, route: string, statusCode: number, seconds: number) => void
  /** A change to a hold, counted once: idempotent replays are not passed here. */
  hold: (event: HoldEvent) => void
  /** The read cache of GET /checkout/:id (READ_CACHE); its series stay at 0 while it is off. */
  readCache: ReadCacheMetrics
}

/** Requests answer in milliseconds; the top buckets catch Redis timeouts (REDIS_COMMAND_TIMEOUT_MS). */
const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5]

const HOLD_HELP: Record<HoldEvent, string> = {
  created: 'Holds created (201 on POST /checkout); idempotent replays not counted',
  conflicted: 'Creates refused because the id is held (409 CHECKOUT_EXISTS); idempotent replays not counted',
  completed: 'Holds completed; idempotent replays not counted',
  cancelled: 'Holds cancelled; idempotent replays not counted',
  extended: 'Holds extended; idempotent replays not counted'
}

export function createApiMetrics (): ApiMetrics {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry })
  const requests = new Counter({
    name: 'checkout_http_requests_total',
    help: 'HTTP requests answered, by method, route pattern ("unmatched" when no route matched) and status code',
    labelNames: ['method', 'route', 'status_code'] as const,
    registers: [registry]
  })
  const latency = new Histogram({
    name: 'checkout_http_request_duration_seconds',
    help: 'Time from receiving a request to sending its response, by method and route pattern',
    labelNames: ['method', 'route'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [registry]
  })
  const holds = Object.fromEntries(Object.entries(HOLD_HELP).map(([event, help]) => [
    event, new Counter({ name: `checkout_holds_${event}_total`, help, registers: [registry] })
  ])) as Record<HoldEvent, Counter>

  const cacheHits = new Counter({ name: 'checkout_read_cache_hits_total', help: 'GET /checkout/:id answered from the read cache', registers: [registry] })
  const cacheMisses = new Counter({
    name: 'checkout_read_cache_misses_total', help: 'GET /checkout/:id with the read cache on that read Redis (not cached, invalidated, evicted or tracking down)', registers: [registry]
  })
  const cacheEntries = new Gauge({ name: 'checkout_read_cache_entries', help: 'Holds in the read cache now', registers: [registry] })
  const cacheFlushes = new Counter({
    name: 'checkout_read_cache_flushes_total', help: 'Times the whole read cache was dropped (a tracking connection closed, FLUSHALL/FLUSHDB)', registers: [registry]
  })

  // Bounded: routes are patterns and statuses a few dozen ("unmatched" for every path no route has).
  const seriesOf = new Map<string, { count: { inc: () => void }, latency: { observe: (value: number) => void } }>()

  return {
    registry,
    readCache: {
      hit: () => cacheHits.inc(),
      miss: () => cacheMisses.inc(),
      flush: () => cacheFlushes.inc(),
      entries: (count) => cacheEntries.set(count)
    },
    request (method, route, statusCode, seconds) {
      // The labelled series of each method, route and status, looked up once: prom-client hashes the labels on every call otherwise.
      const name = `${method} ${route} ${statusCode}`
      let series = seriesOf.get(name)
      if (series === undefined) {
        series = { count: requests.labels(method, route, String(statusCode)), latency: latency.labels(method, route) }
        seriesOf.set(name, series)
      }
      series.count.inc()
      series.latency.observe(seconds)
    },
    hold (event) {
      holds[event].inc()
    }
  }
}
