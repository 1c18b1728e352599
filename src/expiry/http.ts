import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Registry } from 'prom-client'
import { ConfigError } from '../config.js'
import type { Log } from '../redis/connection.js'

/**
 * The worker's small HTTP server: `/metrics` for Prometheus, `/healthz`
 * (the process answers) and `/readyz` (the worker finds and runs expiries
 * now). Plain node:http: three fixed answers need no framework.
 */
export interface Readiness {
  ready: boolean
  /** Why not, when not ready. */
  reason?: string
}

export interface WorkerHttpOptions {
  /** 0 picks a free port (logged, and returned as `port`). */
  port: number
  host: string
  registry: Registry
  readiness: () => Readiness
  log: Log
}

export interface WorkerHttp {
  /** The port it listens on. */
  readonly port: number
  /** Stops listening and closes open connections (Prometheus keeps them alive). Idempotent. */
  close: () => Promise<void>
}

export async function startWorkerHttp (opts: WorkerHttpOptions): Promise<WorkerHttp> {
  const server = createServer((req, res) => { void answer(req, res, opts) })
  server.requestTimeout = 10_000
  server.headersTimeout = 5_000
  server.keepAliveTimeout = 5_000
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(opts.port, opts.host, () => {
        server.off('error', reject)
        resolve()
      })
    })
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? String(err)
    throw new ConfigError(`Invalid WORKER_HTTP_PORT=${opts.port}: cannot listen on ${opts.host}:${opts.port} (${code}); -1 turns the worker's HTTP server off`)
  }
  server.on('error', (err) => opts.log.error({ err }, 'worker http server error'))
  const { port } = server.address() as AddressInfo
  opts.log.info({ host: opts.host, port }, 'worker http listening: /metrics, /healthz, /readyz')

  let closing: Promise<void> | undefined
  return {
    port,
    async close () {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      })
      await closing
    }
  }
}

const JSON_TYPE = 'application/json; charset=utf-8'

async function answer (req: IncomingMessage, res: ServerResponse, opts: WorkerHttpOptions): Promise<void> {
  const path = (req.url ?? '/').split('?', 1)[0]
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.setHeader('allow', 'GET, HEAD')
    return send(req, res, 405, JSON_TYPE, JSON.stringify({ status: 'method not allowed' }))
  }
  switch (path) {
    case '/healthz':
      return send(req, res, 200, JSON_TYPE, JSON.stringify({ status: 'ok' }))
    case '/readyz': {
      const { ready, reason } = opts.readiness()
      return send(req, res, ready ? 200 : 503, JSON_TYPE, JSON.stringify(ready ? { status: 'ready' } : { status: 'not ready', reason }))
    }
    case '/metrics':
      try {
        return send(req, res, 200, opts.registry.contentType, await opts.registry.metrics())
      } catch (err) {
        opts.log.error({ err }, 'could not collect metrics')
        return send(req, res, 500, JSON_TYPE, JSON.stringify({ status: 'could not collect metrics' }))
      }
    default:
      return send(req, res, 404, JSON_TYPE, JSON.stringify({ status: 'not found', paths: ['/metrics', '/healthz', '/readyz'] }))
  }
}

function send (req: IncomingMessage, res: ServerResponse, status: number, type: string, body: string): void {
  const headers: Record<string, string | number> = { 'content-type': type, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' }
  // Like the API's: every 503 says when to ask again.
  if (status === 503) headers['retry-after'] = 1
  res.writeHead(status, headers)
  res.end(req.method === 'HEAD' ? undefined : body)
}
