/**
 * Tells "Redis can't take this now" (answer 503 with Retry-After, retry
 * later) from a real defect such as a script bug (answer 500). A Redis
 * error reply starts with its code; that code decides, never other words in
 * the message.
 */
const UNAVAILABLE_REPLY_CODES = new Set([
  'OOM', // maxmemory reached under noeviction
  'MISCONF', // stop-writes-on-bgsave-error after a failed snapshot
  'BUSY', // a script or module command runs past busy-reply-threshold
  'LOADING', // the dataset is still loading after a restart
  'READONLY', // a replica, e.g. an old master after failover
  'MASTERDOWN', // a replica that lost its master and serves no stale data
  'NOREPLICAS', // min-replicas-to-write not met
  'CLUSTERDOWN',
  'TRYAGAIN', // a slot migrating
  'MOVED',
  'ASK'
])

/** Redis 6 wraps the reply of a command a script called: `ERR Error running script (…): @user_script:12: OOM …`. */
const SCRIPT_WRAPPED = /^ERR Error running script \(.*?\): @user_script:\d+: (\S+)/

/** The code a Redis error reply starts with (`OOM`, `ERR`…), unwrapped from a script error; undefined for other errors. */
export function replyCode (err: Error): string | undefined {
  if (err.name !== 'ReplyError') return undefined
  const wrapped = SCRIPT_WRAPPED.exec(err.message)
  return wrapped?.[1] ?? err.message.split(' ', 1)[0]
}

/** Connection-level failures: the client could not reach Redis or gave up waiting. */
const CONNECTION_FAILURE = /Stream isn't writeable|Connection is closed|Command timed out|ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|ENOTFOUND|EHOSTUNREACH/

export function isRedisUnavailable (err: unknown): boolean {
  if (!(err instanceof Error)) return false
  const code = replyCode(err)
  if (code !== undefined) return UNAVAILABLE_REPLY_CODES.has(code)
  return err.name === 'MaxRetriesPerRequestError' || CONNECTION_FAILURE.test(err.message)
}
