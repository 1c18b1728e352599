import type { FastifyBaseLogger } from 'fastify'
import fp from 'fastify-plugin'
import type { Logger } from 'pino'

const SLASH = 0x2f

/**
 * The request target as a log line may hold it: the path only. A query
 * string can carry credentials (`?access_token=`), and so can the authority
 * of an absolute-form target (`GET http://user:pass@host/…`).
 */
export function pathForLog (url: string): string {
  // The usual case, a path with no query: nothing to cut.
  if (url.charCodeAt(0) === SLASH && !url.includes('?') && !url.includes('#')) return url
  const path = url.split(/[?#]/, 1)[0] ?? ''
  const absolute = /^[a-z][a-z0-9+.-]*:\/\/[^/]*/i.exec(path)
  return absolute === null ? path : path.slice(absolute[0].length) || '/'
}

/**
 * One access line per request, when its response is sent: method, path,
 * route, status and time, with the request id. Replaces Fastify's two lines
 * per request ("incoming request" and "request completed"), which cost about
 * as much as the rest of a request's handling under load (see bench:api) and
 * would log the query string.
 */
export default fp(async (app) => {
  // A callback hook, not an async one: no promise per request. The line is built only when it is written.
  app.addHook('onResponse', (request, reply, done) => {
    if (infoEnabled(request.log)) {
      request.log.info({
        method: request.method,
        path: pathForLog(request.url),
        route: request.routeOptions.url,
        statusCode: reply.statusCode,
        responseTimeMs: Math.round(reply.elapsedTime * 10) / 10
      }, 'request answered')
    }
    done()
  })
}, { name: 'access-log' })

/** A logger without isLevelEnabled (not pino) is asked to log. */
const infoEnabled = (log: FastifyBaseLogger) => (log as Partial<Pick<Logger, 'isLevelEnabled'>>).isLevelEnabled?.('info') ?? true
