import { pino, type Logger } from 'pino'
import type { Config } from '../../src/config.js'
import type { ExpiryEvent, NamedHandler } from '../../src/expiry/handlers.js'
import { startExpiryWorker, type ExpiryWorker } from '../../src/expiry/worker.js'
import { createKeyspace, type KeyFormat } from '../../src/keys.js'
import type { TestCluster } from './cluster.js'
import { createRedis } from '../../src/redis/connection.js'
import { createStoreContext, type StoreContext } from '../../src/store/context.js'

/** An in-process worker on its own connections, as the worker process builds it. */
export async function testWorker (config: Config, handlers: NamedHandler[], log: Logger = pino({ level: 'silent' })): Promise<ExpiryWorker> {
  return await startExpiryWorker({
    config,
    redis: createRedis({ url: config.REDIS_URL, role: 'worker' }),
    subscriber: createRedis({ url: config.REDIS_URL, role: 'subscriber' }),
    handlers,
    log
  })
}

/** A store context on a fresh connection, for tests that call store functions directly. */
export function testStore (config: Config): StoreContext {
  const redis = createRedis({ url: config.REDIS_URL, role: 'worker' })
  return createStoreContext(redis, createKeyspace(config.KEY_PREFIX, config.KEY_SHARDS, config.KEY_FORMAT as KeyFormat), config.CHECKOUT_RESULT_RETENTION_MS)
}

/** A handler that records every call. */
export function recorder (behaviour: (event: ExpiryEvent) => Promise<void> | void = () => {}) {
  const calls: ExpiryEvent[] = []
  const handler: NamedHandler = {
    name: 'recorder',
    handle: async (event) => {
      calls.push(event)
      await behaviour(event)
    }
  }
  return { calls, handler }
}

export async function until (check: () => boolean | Promise<boolean>, timeoutMs: number, stepMs = 20): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (await check()) return true
    await new Promise((resolve) => setTimeout(resolve, stepMs))
  }
  return await check()
}

/** A logger whose lines the test can read. */
export function capturingLogger (): { log: Logger, lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = []
  const log = pino({ level: 'debug' }, { write: (line: string) => { lines.push(JSON.parse(line) as Record<string, unknown>) } })
  return { log, lines }
}

/** An in-process worker on a Redis Cluster: a Cluster command connection and one subscriber connection per master. */
export async function clusterWorker (
  config: Config, cluster: TestCluster, handlers: NamedHandler[],
  opts: { log?: Logger, keyFormat?: KeyFormat } = {}
): Promise<ExpiryWorker> {
  return await startExpiryWorker({
    config,
    redis: cluster.client(),
    connectNode: (node) => cluster.connectNode(node),
    handlers,
    log: opts.log ?? pino({ level: 'silent' }),
    keyFormat: opts.keyFormat
  })
}
