import { execFileSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { createServer } from 'node:net'
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

/** `namesOnly`: the server certificate names `localhost` but not 127.0.0.1, as managed services name hosts, not addresses. */
export function makeCerts (t: Test, opts: { namesOnly?: boolean } = {}): TestCerts {
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
  // clientAuth too: cluster nodes present it to each other on the TLS cluster bus.
  const names = opts.namesOnly === true ? 'DNS:localhost' : 'IP:127.0.0.1,DNS:localhost'
  signed('server', 'localhost', `subjectAltName=${names}\nextendedKeyUsage=serverAuth,clientAuth\n`)
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

/** A redis-server that speaks TLS only (`--port 0`), requiring client certificates signed by the test CA (see makeCerts). */
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

export async function waitForTls (port: number, certs: TestCerts, timeoutMs = 10_000): Promise<void> {
  const { readFileSync } = await import('node:fs')
  const options = { ca: readFileSync(certs.ca), cert: readFileSync(certs.clientCert), key: readFileSync(certs.clientKey) }
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect({ port, host: '127.0.0.1', servername: 'localhost', ...options })
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

/** A free port whose cluster bus port (+10000, what redis-cli --cluster create assumes) is free too. */
async function portWithBus (): Promise<number> {
  for (;;) {
    const port = await freePort()
    if (port + 10_000 <= 65_535 && await isFree(port + 10_000)) return port
  }
}

async function isFree (port: number): Promise<boolean> {
  return await new Promise((resolve) => {
    const srv = createServer()
    srv.once('error', () => resolve(false))
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)))
  })
}

/**
 * A Redis Cluster that speaks TLS only, clients and bus alike: `masters`
 * nodes without replicas, server certificates from the test CA, no client
 * certificates required. Resolves once every node says cluster_state:ok.
 */
export async function startTlsCluster (t: Test, certs: TestCerts, masters = 3): Promise<number[]> {
  // Nodes announce the name `localhost` (CLUSTER SLOTS hands it out), as ElastiCache announces host names.
  const announce = ['--cluster-announce-hostname', 'localhost', '--cluster-preferred-endpoint-type', 'hostname']
  const ports: number[] = []
  for (let i = 0; i < masters; i++) {
    const port = await portWithBus()
    const dir = tempDir(t, 'tls-cluster')
    await spawnRedis(t, [
      '--port', '0', '--tls-port', String(port),
      '--tls-cert-file', certs.serverCert, '--tls-key-file', certs.serverKey, '--tls-ca-cert-file', certs.ca,
      '--tls-auth-clients', 'no', '--tls-cluster', 'yes', '--tls-replication', 'yes',
      '--cluster-enabled', 'yes', '--cluster-config-file', join(dir, 'nodes.conf'), '--cluster-node-timeout', '2000', ...announce
    ], { port, plain: false })
    await waitForTls(port, certs)
    ports.push(port)
  }
  const cli = (args: string[]) => execFileSync('redis-cli', ['--tls', '--cacert', certs.ca, '-h', 'localhost', ...args], { encoding: 'utf8', timeout: 20_000 })
  cli(['-p', String(ports[0]), '--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '0', '--cluster-yes'])
  const deadline = Date.now() + 15_000
  while (!ports.every((p) => cli(['-p', String(p), 'CLUSTER', 'INFO']).includes('cluster_state:ok'))) {
    if (Date.now() > deadline) throw new Error('the TLS cluster did not become ok within 15 s')
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  return ports
}
