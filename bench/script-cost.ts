import { killAll } from './children.js'
import { startRedisServer } from './redis-server.js'
import { createKeyspace } from '../src/keys.js'
import { closeRedis, createRedis } from '../src/redis/connection.js'
import { createHold } from '../src/store/checkout-store.js'
import { createStoreContext } from '../src/store/context.js'
import { ackJobs, claimDue, type ExpiryJob } from '../src/store/expiry-jobs.js'
import { ownShard } from '../src/store/membership.js'

/**
 * Redis time per expiry of the worker's two scripts, alone: a fresh
 * redis-server, a backlog of expired holds (BENCH_HOLDS, default 40,000),
 * claimed in batches (BENCH_BATCH, default 200) in every shard at once, then
 * acknowledged. INFO commandstats after each phase gives the scripts' time
 * and the commands they ran. `node --import tsx bench/script-cost.ts`
 */
const holds = Number(process.env.BENCH_HOLDS ?? 40_000)
const batch = Number(process.env.BENCH_BATCH ?? 200)
const server = await startRedisServer({ appendonly: false })
const redis = createRedis({ url: server.url, role: 'worker', name: 'bench:script-cost' })
try {
  const ctx = createStoreContext(redis, createKeyspace('ce:', 16), 60_000)
  for (let i = 0; i < holds; i += 500) {
    await Promise.all(Array.from({ length: Math.min(500, holds - i) }, async (_v, j) =>
      await createHold(ctx, { id: `h-${String(i + j).padStart(23, '0')}`, ttlMs: 1000 })))
  }
  await new Promise((resolve) => setTimeout(resolve, 1500))
  const stats = async () => {
    const out = new Map<string, { calls: number, usec: number }>()
    for (const m of String(await redis.info('commandstats')).matchAll(/^cmdstat_(\S+?):calls=(\d+),usec=(\d+)/gm)) {
      out.set(m[1] as string, { calls: Number(m[2]), usec: Number(m[3]) })
    }
    await redis.config('RESETSTAT')
    return out
  }
  const report = (phase: string, s: Map<string, { calls: number, usec: number }>, n: number) => {
    const inner = [...s].filter(([name]) => !/^(evalsha|eval|config\|resetstat|info)$/.test(name))
    console.log(`${phase}: ${((s.get('evalsha')?.usec ?? 0) / n).toFixed(1)} µs of Redis time and ` +
      `${(inner.reduce((sum, [, c]) => sum + c.calls, 0) / n).toFixed(1)} commands per expiry ` +
      `(${inner.map(([name, c]) => `${name} ${(c.usec / n).toFixed(1)} µs`).join(', ')})`)
  }
  await stats()
  const claimed: Array<[number, ExpiryJob[]]> = []
  const lease = { token: 'bench', runningMs: 60_000, maxAttempts: 5 }
  await Promise.all(Array.from({ length: 16 }, async (_v, shard) => {
    const { epoch } = await ownShard(ctx, shard, lease.token)
    for (let seq = 1; seq < 10_000; seq++) {
      const { jobs } = await claimDue(ctx, shard, batch, lease, seq, epoch)
      if (jobs.length === 0) break
      claimed.push([shard, jobs])
    }
  }))
  const n = claimed.reduce((sum, [, jobs]) => sum + jobs.length, 0)
  report(`claim (batches of ${batch})`, await stats(), n)
  await Promise.all(claimed.map(async ([shard, jobs]) => await ackJobs(ctx, shard, lease.token, jobs)))
  report('ack', await stats(), n)
} finally {
  await closeRedis(redis)
  await server.destroy()
  killAll()
}
