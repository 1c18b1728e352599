import type { FastifyInstance } from 'fastify'
import type { RedisNode } from './replica.js'
import { until } from './worker.js'
import { json } from './app.js'

/**
 * What the failover tests share: waiting until the replica has everything
 * the primary has, and a steady stream of POST /checkout from a few
 * clients, each answer recorded with its time.
 */
export async function untilReplicated (primary: RedisNode, replica: RedisNode, timeoutMs = 5000): Promise<boolean> {
  const [p, r] = [primary.client(), replica.client()]
  return await until(async () => {
    const [a, b] = await Promise.all([p.info('replication'), r.info('replication')])
    return /master_repl_offset:(\d+)/.exec(a)?.[1] === /slave_repl_offset:(\d+)/.exec(b)?.[1]
  }, timeoutMs)
}

export interface WriteLoad {
  results: Array<{ at: number, status: number }>
  /** Stops the clients and waits for their last requests. */
  stop: () => Promise<void>
}

export function startWriteLoad (app: FastifyInstance, clients: number, pauseAfterErrorMs: number): WriteLoad {
  const results: WriteLoad['results'] = []
  let loading = true
  const client = async (n: number) => {
    for (let i = 0; loading; i++) {
      const res = await app.inject({ method: 'POST', url: '/checkout', ...json({ id: `load-${n}-${i}`, ttlMs: 60_000 }) })
      results.push({ at: Date.now(), status: res.statusCode })
      if (res.statusCode !== 201) await new Promise((resolve) => setTimeout(resolve, pauseAfterErrorMs))
    }
  }
  const load = Promise.all(Array.from({ length: clients }, async (_v, n) => await client(n)))
  return {
    results,
    async stop () {
      loading = false
      await load
    }
  }
}
