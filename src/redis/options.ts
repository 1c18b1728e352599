import type { RedisOptions } from 'ioredis'
import { commandName } from '../store/scripts.js'

/**
 * What each connection role needs from ioredis:
 * - `api`: fails fast (no offline queue, a command timeout), so a request
 *   answers 503 quickly while Redis is away; reconnects in the background.
 * - `worker`: waits for Redis to come back instead of failing, so an
 *   acknowledgement is never dropped because of a short outage; but a
 *   command Redis does not answer (hung, or a silent partition) fails after
 *   WORKER_COMMAND_TIMEOUT_MS, so the heartbeat (one in flight per shard)
 *   can send the next one and nothing waits without bound. The worker sends
 *   no heartbeat, poll or claim while the connection is down, so its offline
 *   queue holds at most one outcome per run (EXPIRY_CONCURRENCY).
 * - `subscriber`: a dedicated pub/sub connection; ioredis resubscribes it
 *   after every reconnect.
 */
export type RedisRole = 'api' | 'worker' | 'subscriber'

export interface ConnectionTimeouts {
  connectTimeoutMs: number
  commandTimeoutMs: number
  /** Reconnect delays double from 50 ms up to this. */
  retryMaxDelayMs: number
}

export const DEFAULT_TIMEOUTS: ConnectionTimeouts = { connectTimeoutMs: 5000, commandTimeoutMs: 2000, retryMaxDelayMs: 2000 }

/** How long the worker waits for any one reply: far above a healthy round trip, below a lease. */
export const WORKER_COMMAND_TIMEOUT_MS = 2000

/** Capped exponential backoff: 100, 200, 400 ... up to maxMs; never gives up. */
export const retryDelay = (maxMs: number) => (times: number) => Math.min(50 * 2 ** Math.min(times, 16), maxMs)

/**
 * A managed Redis that fails over by moving its DNS name leaves our
 * connections on the old primary, now a replica: every write answers
 * READONLY and will until we reconnect and resolve the name again.
 */
export const isReadOnlyError = (err: Error): boolean => err.message.startsWith('READONLY')

/**
 * AWS Lambda freezes the process between invocations, for seconds or
 * hours, and may thaw it with its connections silently gone (a NAT or
 * load-balancer entry that idled out) or Redis failed over meanwhile. Added
 * to a role's options there:
 * - connect during init (not lazily): init time is not billed per request;
 * - no offline queue: a command sent while the connection is down fails at
 *   once (503) instead of waiting for a reconnect that may come after the
 *   function's timeout, and nothing queues up while frozen;
 * - one retry: a command written into a socket that turns out dead after a
 *   thaw (reset by the NAT) is sent once more on the new connection rather
 *   than failing the request (a script that reached Redis before the reset
 *   answers as a replay or 409 on its resend, never a second hold);
 * - a socket timeout as long as the command timeout: a connection that
 *   answered nothing after a command for that long (a silently dropped
 *   flow) is destroyed and made again, so the next invocation gets a
 *   working one instead of the same dead socket;
 * - TCP keep-alive from 30 s of silence, well under the 350 s after which
 *   an AWS NAT gateway or Lambda's VPC interface drops an idle flow;
 * - reconnect on READONLY, as everywhere (roleOptions).
 */
export const LAMBDA_KEEPALIVE_MS = 30_000

export function lambdaOptions (role: RedisRole, timeouts: ConnectionTimeouts): RedisOptions {
  const commandTimeout = role === 'api' ? timeouts.commandTimeoutMs : WORKER_COMMAND_TIMEOUT_MS
  return {
    lazyConnect: false,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    commandTimeout,
    socketTimeout: commandTimeout,
    keepAlive: LAMBDA_KEEPALIVE_MS
  }
}

export function roleOptions (role: RedisRole, timeouts: ConnectionTimeouts, onReadOnly?: () => void): RedisOptions {
  // 1: reconnect and fail the command (the API answers 503, the client retries);
  // 2: reconnect and send it again. Only scripts are sent again: one that met
  // READONLY changed nothing, whereas a command queued in a MULTI would be
  // sent again outside its transaction.
  const reconnectOnError = (resend: boolean) => (err: Error & { command?: { name: string } }) => {
    if (!isReadOnlyError(err)) return false
    onReadOnly?.()
    return resend && /^eval(sha)?$/.test(err.command?.name ?? '') ? 2 : 1
  }
  const byRole: Record<RedisRole, RedisOptions> = {
    api: {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: timeouts.commandTimeoutMs,
      enableAutoPipelining: true,
      reconnectOnError: reconnectOnError(false)
    },
    worker: {
      maxRetriesPerRequest: null,
      commandTimeout: WORKER_COMMAND_TIMEOUT_MS,
      enableAutoPipelining: true,
      // Acks go out at once (they are batched already): auto-pipelining would hold them until the
      // next check phase, and a worker that dies between a handler's end and its ack runs the order again.
      autoPipeliningIgnoredCommands: [commandName('ack')],
      reconnectOnError: reconnectOnError(true)
    },
    subscriber: { maxRetriesPerRequest: null, autoResubscribe: true, reconnectOnError: reconnectOnError(false) }
  }
  return {
    retryStrategy: retryDelay(timeouts.retryMaxDelayMs),
    connectTimeout: timeouts.connectTimeoutMs,
    // RESP2 keeps script and pub/sub replies in the same shapes on every Redis
    // version and managed service we run on.
    protocol: 2,
    ...byRole[role]
  }
}
