import { readFileSync } from 'node:fs'
import type { ConnectionOptions } from 'node:tls'
import { ConfigError, type Config } from '../config.js'

/**
 * The TLS options of every Redis connection (primary, replicas, cluster
 * nodes, sentinels with REDIS_SENTINEL_TLS), read once at start. ioredis does
 * not take TLS from cluster node addresses, so the same options go to each.
 * Undefined for a redis:// URL.
 */
export function tlsOptions (config: Config, useTls: boolean): ConnectionOptions | undefined {
  if (!useTls) return undefined
  const tls: ConnectionOptions = {}
  if (config.REDIS_TLS_CA_FILE) tls.ca = readPem('REDIS_TLS_CA_FILE', config.REDIS_TLS_CA_FILE)
  if (config.REDIS_TLS_CERT_FILE) tls.cert = readPem('REDIS_TLS_CERT_FILE', config.REDIS_TLS_CERT_FILE)
  if (config.REDIS_TLS_KEY_FILE) tls.key = readPem('REDIS_TLS_KEY_FILE', config.REDIS_TLS_KEY_FILE)
  if (config.REDIS_TLS_SERVERNAME) tls.servername = config.REDIS_TLS_SERVERNAME
  // Only when asked for by name (REDIS_TLS_SKIP_VERIFY); the deployment's description says so in the start line.
  if (config.REDIS_TLS_SKIP_VERIFY) tls.rejectUnauthorized = false
  return tls
}

function readPem (name: string, path: string): string {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'unreadable'
    throw new ConfigError(`Invalid ${name}=${JSON.stringify(path)}: cannot read the file (${code})`)
  }
  if (!text.includes('-----BEGIN ')) throw new ConfigError(`Invalid ${name}=${JSON.stringify(path)}: not a PEM file`)
  return text
}

/** Node's codes for a certificate the client does not trust. */
const UNTRUSTED = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'CERT_SIGNATURE_FAILURE',
  'CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID', 'CERT_UNTRUSTED', 'CERT_REJECTED'
])

/**
 * A connection error that retrying cannot fix (the certificate, the
 * password), as the one line the process stops with; undefined for errors
 * that may pass (refused, reset, timed out, loading).
 */
export function describeFatalConnectionError (err: Error): string | undefined {
  if (isSelectFailure(err)) {
    const db = String(err.command?.args[0] ?? '')
    return `Redis refused to select database ${db} (${err.message}): check the database number at the end of REDIS_URL ` +
      '(Redis has as many as its "databases" setting, 16 by default; a cluster has only 0)'
  }
  const code = (err as NodeJS.ErrnoException).code ?? ''
  if (UNTRUSTED.has(code)) return `the Redis server certificate is not trusted (${err.message}): check REDIS_TLS_CA_FILE`
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
    return `the Redis server certificate does not name the host (${err.message}): check the host or REDIS_TLS_SERVERNAME`
  }
  if (code.startsWith('ERR_SSL_')) {
    return `the TLS handshake with Redis failed (${err.message}): a rediss:// URL to a port without TLS, or a client certificate the server wants (REDIS_TLS_CERT_FILE)`
  }
  if (/^(WRONGPASS|NOAUTH)\b/.test(err.message)) return `Redis refused the credentials (${err.message}): check the user and password in REDIS_URL`
  if (/^NOPERM\b/.test(err.message)) return `the Redis user lacks a permission the connection needs (${err.message}): see the ACL rules in docs/deploy.md`
  return undefined
}

/**
 * The SELECT of REDIS_URL's database failed. ioredis then carries on in
 * database 0, where the data would mix with whatever is there: never serve
 * on such a connection.
 */
export function isSelectFailure (err: Error): err is Error & { command: { name: string, args: unknown[] } } {
  return (err as { command?: { name?: unknown } }).command?.name === 'select'
}
