import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { connect, createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Redis } from 'ioredis'

/**
 * Gives a test file its own real Redis: a testcontainers Redis when a
 * container runtime answers, otherwise a `redis-server` spawned on a free
 * loopback port. Never the shared 6379, never a mock.
 *
 * Tests that restart or kill Redis (`restartable: true`) always get a
 * spawned process, because they control its lifetime and its AOF directory.
 */
export interface TestRedis {
  url: string
  port: number
  backend: 'container' | 'process'
  /** A fresh client for the test, closed by stop(). */
  client: () => Redis
  /** Stops the server (SIGKILL with `crash`) and keeps its data directory. */
  kill: (opts?: { crash?: boolean }) => Promise<void>
  /** Starts it again on the same port with the same data directory. */
  start: () => Promise<void>
  stop: () => Promise<void>
}

export interface TestRedisOptions {
  restartable?: boolean
  appendonly?: boolean
  extraArgs?: string[]
}

const IMAGE = 'redis:7.2-alpine'

/** Asks the Docker API socket for /_ping with a short timeout: no runtime answers in milliseconds. */
export async function containerRuntimeAnswers (): Promise<boolean> {
  if (process.env.TEST_REDIS === 'process') return false
  const host = process.env.DOCKER_HOST
  const socket = host?.startsWith('unix://') ? host.slice('unix://'.length) : '/var/run/docker.sock'
  if (host && !host.startsWith('unix://')) return true
  if (!existsSync(socket)) return false
  return await new Promise<boolean>((resolve) => {
    const s = connect(socket)
    const done = (ok: boolean) => { s.destroy(); resolve(ok) }
    s.setTimeout(300, () => done(false))
    s.once('error', () => done(false))
    s.once('connect', () => s.write('GET /_ping HTTP/1.0\r\n\r\n'))
    s.once('data', (d) => done(d.toString().includes(' 200 ')))
  })
}

export async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const srv = createServer()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number }
      srv.close(() => resolve(port))
    })
  })
}

export async function waitForRedis (port: number, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1')
      s.setTimeout(500, () => { s.destroy(); resolve(false) })
      s.once('error', () => resolve(false))
      s.once('connect', () => s.write('PING\r\n'))
      s.once('data', (d) => { s.destroy(); resolve(d.toString().startsWith('+PONG')) })
    })
    if (ok) return
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
  throw new Error(`redis on port ${port} did not answer within ${timeoutMs} ms`)
}

async function startProcess (opts: TestRedisOptions): Promise<TestRedis> {
  const port = await freePort()
  const dir = mkdtempSync(join(tmpdir(), 'ce-redis-'))
  const args = [
    '--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '',
    '--appendonly', opts.appendonly === true ? 'yes' : 'no', '--appendfsync', 'always',
    ...(opts.extraArgs ?? [])
  ]
  let proc: ChildProcess | undefined
  const clients: Redis[] = []
  const launch = async () => {
    proc = spawn('redis-server', args, { stdio: 'ignore' })
    proc.once('error', (err) => { throw new Error(`cannot start redis-server (apt-get install -y redis-server): ${err.message}`) })
    await waitForRedis(port)
  }
  const kill = async ({ crash = false } = {}) => {
    const p = proc
    if (!p || p.exitCode !== null) return
    const exited = new Promise((resolve) => p.once('exit', resolve))
    p.kill(crash ? 'SIGKILL' : 'SIGTERM')
    await exited
  }
  await launch()
  return {
    url: `redis://127.0.0.1:${port}/0`,
    port,
    backend: 'process',
    client: () => {
      const c = new Redis(port, '127.0.0.1', { protocol: 2, maxRetriesPerRequest: null })
      c.on('error', () => {})
      clients.push(c)
      return c
    },
    kill,
    start: launch,
    async stop () {
      for (const c of clients) c.disconnect()
      await kill({ crash: true })
      rmSync(dir, { recursive: true, force: true })
    }
  }
}

async function startContainer (): Promise<TestRedis> {
  const { RedisContainer } = await import('@testcontainers/redis')
  const container = await new RedisContainer(IMAGE).withCommand(['redis-server', '--save', '', '--appendonly', 'no']).start()
  const port = container.getPort()
  const clients: Redis[] = []
  const unsupported = async () => { throw new Error('restart tests need a spawned redis-server (restartable: true)') }
  return {
    url: `redis://${container.getHost()}:${port}/0`,
    port,
    backend: 'container',
    client: () => {
      const c = new Redis(port, container.getHost(), { protocol: 2, maxRetriesPerRequest: null })
      c.on('error', () => {})
      clients.push(c)
      return c
    },
    kill: unsupported,
    start: unsupported,
    async stop () {
      for (const c of clients) c.disconnect()
      await container.stop()
    }
  }
}

/** Starts a Redis for one test file; register `t.teardown(redis.stop)`. */
export async function startRedis (opts: TestRedisOptions = {}): Promise<TestRedis> {
  if (!opts.restartable && !opts.appendonly && !opts.extraArgs && await containerRuntimeAnswers()) {
    return await startContainer()
  }
  return await startProcess(opts)
}
