import { join } from 'node:path'
import { startCluster } from '../test/helpers/cluster.js'
import { freePort } from '../test/helpers/redis.js'
import { spawnNode, track, type NodeChild } from './children.js'
import { readRecords } from './record.js'
import { SENTINEL_MASTER, startSentinels } from './sentinel.js'
import { adminClient, sleep, until } from './util.js'

/**
 * One failover run: a fresh deployment (a 3-master cluster with one replica
 * each, or a primary, a replica and three sentinels), the real API process
 * and two real worker processes on it, a steady stream of holds through the
 * API, then one fault in the middle.
 */
export type FailoverKind = 'manual' | 'kill' | 'sentinel'

export interface FailoverResult {
  kind: FailoverKind
  /** ms from the fault until the replica said role:master. */
  promotedMs: number
  /** Writes sent around the fault. */
  writes: number
  /** Writes answered with an error (not 201). */
  failed: number
  /** From the first failed write's send to the last failed write's answer (0 when none failed). */
  errorSpanMs: number
  /** From the fault to the last answer of a write that failed or waited longer than 250 ms. */
  apiBackMs: number
  /** From the fault to the start of the last handler that ran more than 250 ms late. */
  expiriesBackMs: number
  maxLatenessMs: number
  /** Acknowledged holds the cluster no longer had after the failover (asynchronous replication). */
  lostWithMaster: number
  /** Acknowledged holds still present whose handler never ran. */
  notHandled: number
  duplicated: number
}

const DISTURBED_MS = 250
const RATE_PER_S = 100
const TTL_MS = 1000

interface Write { id: string, sentAt: number, answeredAt: number, ok: boolean }

/** Where the run happens: how the processes connect, the fault, and how to tell the replica took over. */
interface Deployment {
  env: Record<string, string>
  /** Injects the fault; resolves with a check that the replica has become the primary. */
  fault: () => Promise<() => Promise<boolean>>
  stop: () => Promise<void>
}

async function deploy (kind: FailoverKind, nodeTimeoutMs: number): Promise<Deployment> {
  if (kind === 'sentinel') {
    const sentinels = await startSentinels()
    const replica = adminClient(sentinels.replicaPort, 'bench:replica')
    return {
      env: { REDIS_SENTINELS: sentinels.addresses, REDIS_SENTINEL_MASTER: SENTINEL_MASTER },
      fault: async () => {
        sentinels.killPrimary()
        return async () => String(await replica.info('replication')).includes('role:master')
      },
      stop: async () => { replica.disconnect(); await sentinels.stop() }
    }
  }
  const cluster = await startCluster({ nodeTimeoutMs, onSpawn: track })
  return {
    env: { REDIS_CLUSTER_NODES: cluster.nodes.slice(0, 3).map((n) => `${n.host}:${n.port}`).join(',') },
    fault: async () => {
      const [victim] = await cluster.masters()
      const replica = victim!.replicas[0]!
      if (kind === 'manual') await cluster.node(replica).call('CLUSTER', 'FAILOVER')
      else await cluster.kill(victim!.port)
      return async () => String(await cluster.node(replica).info('replication')).includes('role:master')
    },
    stop: async () => await cluster.stop()
  }
}

export async function runFailover (kind: FailoverKind, opts: { nodeTimeoutMs: number, dir: string, run: number }): Promise<FailoverResult> {
  const deployment = await deploy(kind, opts.nodeTimeoutMs)
  const children: NodeChild[] = []
  try {
    const port = await freePort()
    const recordFile = join(opts.dir, `${kind}-${opts.run}-calls.jsonl`)
    const env = {
      ...deployment.env,
      KEY_PREFIX: `bench-fo-${kind}-${opts.run}:`,
      LOG_LEVEL: 'info',
      PORT: String(port),
      HOST: '127.0.0.1',
      EXPIRY_HANDLERS: 'bench/handler.ts',
      BENCH_RECORD_FILE: recordFile,
      WORKER_HTTP_PORT: '0'
    }
    const log = (name: string) => join(opts.dir, `${kind}-${opts.run}-${name}.log`)
    // The API first: it records the key layout the workers then read.
    const api = spawnNode('src/server.ts', env, log('api'))
    children.push(api)
    await waitForLine(api, 'checkout API ready')
    const workers = [spawnNode('workers/expiry-worker.ts', env, log('worker-1')), spawnNode('workers/expiry-worker.ts', env, log('worker-2'))]
    children.push(...workers)
    await Promise.all(workers.map(async (w) => await waitForLine(w, 'expiry worker ready')))

    const writes: Write[] = []
    const base = `http://127.0.0.1:${port}`
    let n = 0
    const inFlight = new Set<Promise<void>>()
    const send = () => {
      const id = `h-${n++}`
      const sentAt = Date.now()
      const p = fetch(`${base}/checkout`, {
        method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ id, ttlMs: TTL_MS }), signal: AbortSignal.timeout(10_000)
      }).then((res) => res.status === 201, () => false).then((ok) => { writes.push({ id, sentAt, answeredAt: Date.now(), ok }) })
      inFlight.add(p)
      void p.finally(() => inFlight.delete(p))
    }
    const timer = setInterval(send, 1000 / RATE_PER_S)
    await sleep(3000)

    const faultAt = Date.now()
    const promoted = await deployment.fault()
    await until(promoted, 30_000, 'the replica to take over')
    const promotedMs = Date.now() - faultAt
    await sleep(Math.max(0, faultAt + 12_000 - Date.now()))
    clearInterval(timer)
    await Promise.all([...inFlight])
    // Every hold is due 1 s after it was written; give the workers time to finish.
    await sleep(5000)

    return { kind, promotedMs, ...await measure(base, writes, readRecords(recordFile), faultAt) }
  } finally {
    await Promise.all(children.map(async (c) => await c.stop(3000)))
    await deployment.stop()
  }
}

async function measure (
  base: string, writes: Write[], calls: ReturnType<typeof readRecords>, faultAt: number
): Promise<Omit<FailoverResult, 'kind' | 'promotedMs'>> {
  const failures = writes.filter((w) => !w.ok)
  const disturbed = writes.filter((w) => !w.ok || w.answeredAt - w.sentAt > DISTURBED_MS)
  const acked = writes.filter((w) => w.ok).map((w) => w.id)
  const present = new Set<string>()
  for (let i = 0; i < acked.length; i += 100) {
    await Promise.all(acked.slice(i, i + 100).map(async (id) => {
      const res = await fetch(`${base}/checkout/${id}`, { signal: AbortSignal.timeout(5000) }).catch(() => undefined)
      if (res?.status === 200) present.add(id)
    }))
  }
  const runs = new Map<string, number>()
  const firstStart = new Map<string, { now: number, deadline: number }>()
  for (const c of calls) {
    runs.set(c.id, (runs.get(c.id) ?? 0) + 1)
    const seen = firstStart.get(c.id)
    if (!seen || c.now < seen.now) firstStart.set(c.id, { now: c.now, deadline: c.deadline ?? c.now })
  }
  const late = [...firstStart.values()].filter((s) => s.now - s.deadline > DISTURBED_MS)
  return {
    writes: writes.length,
    failed: failures.length,
    errorSpanMs: failures.length === 0 ? 0 : Math.max(...failures.map((f) => f.answeredAt)) - Math.min(...failures.map((f) => f.sentAt)),
    apiBackMs: disturbed.length === 0 ? 0 : Math.max(0, Math.max(...disturbed.map((w) => w.answeredAt)) - faultAt),
    expiriesBackMs: late.length === 0 ? 0 : Math.max(0, Math.max(...late.map((s) => s.now)) - faultAt),
    maxLatenessMs: Math.max(0, ...[...firstStart.values()].map((s) => s.now - s.deadline)),
    lostWithMaster: acked.filter((id) => !present.has(id)).length,
    notHandled: acked.filter((id) => present.has(id) && !runs.has(id)).length,
    duplicated: [...runs.values()].filter((count) => count > 1).length
  }
}

async function waitForLine (child: NodeChild, text: string): Promise<void> {
  await until(() => {
    if (child.proc.exitCode !== null) throw new Error(`process exited (${child.proc.exitCode}) before "${text}":\n${child.output()}`)
    return child.output().includes(text)
  }, 30_000, `"${text}"`)
}
