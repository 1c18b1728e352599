import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import t from 'tap'
import { RECORD_HANDLER, readRecords, startApi, startChild, startWorker } from './helpers/processes.js'
import { tempDir } from './helpers/temp.js'
import { makeCerts, startTlsRedis } from './helpers/tls.js'
import { until } from './helpers/worker.js'

/**
 * The API and the worker reach a TLS-only Redis that requires client
 * certificates, with rediss:// and the REDIS_TLS_* files; a CA that did not
 * sign the server certificate stops either process at start with one line
 * naming the setting to check, instead of retrying for ever.
 */
const certs = makeCerts(t)
const redis = await startTlsRedis(t, certs)
const base = {
  REDIS_URL: `rediss://127.0.0.1:${redis.port}/0`,
  REDIS_TLS_CERT_FILE: certs.clientCert,
  REDIS_TLS_KEY_FILE: certs.clientKey,
  KEY_PREFIX: `t${randomBytes(4).toString('hex')}:`,
  LOG_LEVEL: 'warn'
}

t.test('rediss:// with the CA and a client certificate: the API holds and reads, the worker runs the expiry', async (t) => {
  const record = join(tempDir(t, 'tls-record'), 'record.jsonl')
  const env = { ...base, REDIS_TLS_CA_FILE: certs.ca, EXPIRY_HANDLERS: RECORD_HANDLER, RECORD_FILE: record }
  const api = await startApi({ ...env, LOG_LEVEL: 'info' })
  t.teardown(() => api.signal('SIGKILL'))
  const worker = await startWorker({ ...env, LOG_LEVEL: 'info' })
  t.teardown(() => worker.signal('SIGKILL'))
  const post = await fetch(`${api.base}/checkout`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ id: 'tls-1', ttlMs: 1000 })
  })
  t.equal(post.status, 201)
  t.equal((await fetch(`${api.base}/checkout/tls-1`)).status, 200)
  t.ok(await until(() => readRecords(record).some((r) => r.id === 'tls-1' && r.ok), 8000), 'the worker ran the expiry over TLS')
  t.match(api.output(), /"redis":"rediss:\/\/127\.0\.0\.1:\d+\/0"/, 'the API says where it connected')
})

for (const entry of ['src/server.ts', 'workers/expiry-worker.ts'] as const) {
  t.test(`${entry}: a CA that did not sign the server certificate stops it at start with one line`, async (t) => {
    const child = startChild(entry, { ...base, REDIS_TLS_CA_FILE: certs.otherCa })
    const exited = await Promise.race([child.exited, new Promise<'hung'>((resolve) => setTimeout(() => resolve('hung'), 15_000))])
    if (exited === 'hung') child.proc.kill('SIGKILL')
    t.same(exited, { code: 1, signal: null }, 'exit code 1')
    const lines = child.output().trim().split('\n')
    t.equal(lines.length, 1, `one line: ${child.output()}`)
    t.match(lines[0], /^checkout-expiry: cannot connect to Redis \(rediss:\/\/127\.0\.0\.1:\d+\/0\): the Redis server certificate is not trusted \(.+\): check REDIS_TLS_CA_FILE$/)
  })
}

t.test('a missing CA file stops it with one line naming the variable', async (t) => {
  const child = startChild('src/server.ts', { ...base, REDIS_TLS_CA_FILE: join(certs.dir, 'missing.pem') })
  t.same(await child.exited, { code: 1, signal: null })
  t.match(child.output().trim(), /^checkout-expiry: Invalid REDIS_TLS_CA_FILE=".*missing\.pem": cannot read the file \(ENOENT\)$/)
})
