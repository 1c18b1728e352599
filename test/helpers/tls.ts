import { execFileSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { connect } from 'node:tls'
import type { Test } from 'tap'
import { freePort } from './redis.js'
import { spawnRedis, type RedisNode } from './replica.js'
import { tempDir } from './temp.js'

/**
 * Certificates made for one test with openssl, in a temp directory removed at
 * teardown: a CA, a server certificate it signed for 127.0.0.1 and localhost,
 * a client certificate, and a second CA that signed nothing of ours.
 */
export interface TestCerts {
  dir: string
  ca: string
  serverCert: string
  serverKey: string
  clientCert: string
  clientKey: string
  otherCa: string
}

const openssl = (dir: string, args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' })
const ecKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes']

export function makeCerts (t: Test): TestCerts {
  const dir = tempDir(t, 'tls')
  const selfSigned = (name: string, cn: string) =>
    openssl(dir, ['req', '-x509', ...ecKey, '-keyout', `${name}.key`, '-out', `${name}.crt`, '-days', '2', '-subj', `/CN=${cn}`])
  const signed = (name: string, cn: string, ext: string) => {
    writeFileSync(join(dir, `${name}.ext`), ext)
    openssl(dir, ['req', ...ecKey, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`])
    openssl(dir, ['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial',
      '-out', `${name}.crt`, '-days', '2', '-extfile', `${name}.ext`])
  }
  selfSigned('ca', 'checkout-expiry test CA')
  selfSigned('other-ca', 'some other CA')
  signed('server', 'localhost', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n')
  signed('client', 'checkout-expiry', 'extendedKeyUsage=clientAuth\n')
  const at = (f: string) => join(dir, f)
  return {
    dir,
    ca: at('ca.crt'),
    serverCert: at('server.crt'),
    serverKey: at('server.key'),
    clientCert: at('client.crt'),
    clientKey: at('client.key'),
    otherCa: at('other-ca.crt')
  }
}

/** A redis-server that speaks TLS only (`--port 0`), requiring client certificates signed by the test CA. */
export async function startTlsRedis (t: Test, certs: TestCerts): Promise<RedisNode> {
  const port = await freePort()
  const node = await spawnRedis(t, [
    '--port', '0', '--tls-port', String(port),
    '--tls-cert-file', certs.serverCert, '--tls-key-file', certs.serverKey,
    '--tls-ca-cert-file', certs.ca, '--tls-auth-clients', 'yes'
  ], { port, plain: false })
  await waitForTls(port, certs)
  return node
}

async function waitForTls (port: number, certs: TestCerts, timeoutMs = 10_000): Promise<void> {
  const { readFileSync } = await import('node:fs')
  const options = { ca: readFileSync(certs.ca), cert: readFileSync(certs.clientCert), key: readFileSync(certs.clientKey) }
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect({ port, host: '127.0.0.1', ...options })
      s.setTimeout(500, () => { s.destroy(); resolve(false) })
      s.once('error', () => resolve(false))
      s.once('secureConnect', () => s.write('PING\r\n'))
      s.once('data', (d) => { s.destroy(); resolve(d.toString().startsWith('+PONG')) })
    })
    if (ok) return
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
  throw new Error(`TLS redis on port ${port} did not answer within ${timeoutMs} ms`)
}
