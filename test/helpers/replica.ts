import { spawn, type ChildProcess } from 'node:child_process'
import { connect, createServer, type Server, type Socket } from 'node:net'
import type { FastifyInstance } from 'fastify'
import { Redis } from 'ioredis'
import { pino } from 'pino'
import type { Test } from 'tap'
import { buildApp } from '../../src/app.js'
import type { Config } from '../../src/config.js'
import type { NamedHandler } from '../../src/expiry/handlers.js'
import { startExpiryWorker, type ExpiryWorker } from '../../src/expiry/worker.js'
import { closeRedis } from '../../src/redis/connection.js'
import { redisDeployment } from '../../src/redis/deployment.js'
import { createRedisClient, createWorkerConnections } from '../../src/redis/factory.js'
import { freePort, waitForRedis } from './redis.js'
import { tempDir } from './temp.js'

/**
 * Spawned redis-server processes a test controls (primaries, replicas,
 * sentinels) on free loopback ports, each killed and its directory removed
 * at teardown; and a TCP endpoint that can be pointed at another node, like
 * the DNS name of a managed Redis that moves on failover.
 */
export interface RedisNode {
  port: number
  proc: ChildProcess
  /** A plain client for the test, closed at teardown. */
  client: () => Redis
  /** SIGKILL; resolves once the process is gone. */
  kill: () => Promise<void>
}

export async function spawnRedis (t: Test, args: string[], opts: { port?: number, sentinel?: boolean, plain?: boolean } = {}): Promise<RedisNode> {
  const port = opts.port ?? await freePort()
  const dir = tempDir(t, 'node')
  const base = opts.sentinel === true ? [] : ['--save', '', '--appendonly', 'no', '--dir', dir]
  const proc = spawn('redis-server', [...args, ...(opts.plain === false ? [] : ['--port', String(port)]), '--bind', '127.0.0.1', ...base], { stdio: 'ignore' })
  const clients: Redis[] = []
  const kill = async () => {
    if (proc.exitCode !== null || proc.signalCode !== null) return
    const exited = new Promise((resolve) => proc.once('exit', resolve))
    proc.kill('SIGKILL')
    await exited
  }
  t.teardown(async () => {
    for (const c of clients) c.disconnect()
    await kill()
  })
  if (opts.plain !== false) await waitForRedis(port)
  return {
    port,
    proc,
    kill,
    client: () => {
      const c = new Redis(port, '127.0.0.1', { protocol: 2, maxRetriesPerRequest: 1, lazyConnect: false })
      c.on('error', () => {})
      clients.push(c)
      return c
    }
  }
}

/** A primary with one replica, the replica's link up. */
export async function startPrimaryAndReplica (t: Test): Promise<{ primary: RedisNode, replica: RedisNode }> {
  const primary = await spawnRedis(t, [])
  const replica = await spawnRedis(t, ['--replicaof', '127.0.0.1', String(primary.port)])
  await waitForLink(replica)
  return { primary, replica }
}

export async function waitForLink (replica: RedisNode, timeoutMs = 10_000): Promise<void> {
  const c = replica.client()
  const deadline = Date.now() + timeoutMs
  while (!(await c.info('replication')).includes('master_link_status:up')) {
    if (Date.now() > deadline) throw new Error(`replica on ${replica.port}: no link to its primary within ${timeoutMs} ms`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  c.disconnect()
}

export interface Endpoint {
  port: number
  /** New connections go to this port from now on; open ones stay where they are. */
  pointAt: (port: number) => void
}

/** A TCP endpoint in front of a node: what a managed Redis' primary DNS name is to its clients. */
export async function startEndpoint (t: Test, targetPort: number): Promise<Endpoint> {
  let target = targetPort
  const sockets = new Set<Socket>()
  const server: Server = createServer((client) => {
    const upstream = connect(target, '127.0.0.1')
    for (const s of [client, upstream]) {
      sockets.add(s)
      s.on('error', () => { client.destroy(); upstream.destroy() })
      s.on('close', () => { sockets.delete(s); client.destroy(); upstream.destroy() })
    }
    client.pipe(upstream)
    upstream.pipe(client)
  })
  const port = await freePort()
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve))
  t.teardown(async () => {
    for (const s of sockets) s.destroy()
    await new Promise((resolve) => server.close(resolve))
  })
  return { port, pointAt: (p) => { target = p } }
}

/** An in-process worker on the connections the worker process builds from its config (any topology). */
export async function factoryWorker (config: Config, handlers: NamedHandler[]): Promise<ExpiryWorker> {
  const { redis, subscriber, connectNode } = createWorkerConnections(redisDeployment(config))
  return await startExpiryWorker({ config, redis, subscriber, connectNode, handlers, log: pino({ level: 'silent' }) })
}

/** An in-process API on the connection the API process builds from its config; closing the app closes it too. */
export async function factoryApp (config: Config): Promise<FastifyInstance> {
  const redis = createRedisClient(redisDeployment(config), 'api')
  const app = await buildApp({ config, redis }).catch(async (err: unknown) => {
    await closeRedis(redis)
    throw err
  })
  app.addHook('onClose', async () => await closeRedis(redis))
  await app.ready()
  return app
}
