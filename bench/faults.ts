import type { Redis } from 'ioredis'
import type { NodeChild } from './children.js'
import type { BenchRedis } from './redis-server.js'
import type { Scenario } from './scenarios.js'
import type { BenchSystem, Cell } from './systems/types.js'
import { sleep } from './util.js'

/**
 * The faults of scenarios C to F, timed against the window: cut the workers
 * off, start them late, restart Redis, or SIGKILL a worker and start a
 * replacement. Each records what it did.
 */
export interface FaultContext {
  /** The first deadline. */
  t0: number
  lastDeadline: number
  redis: BenchRedis
  admin: Redis
  cell: Cell
  /** Workers started here are added, so the run stops them. */
  workers: NodeChild[]
  record: Record<string, number>
}

const sleepUntil = async (at: number) => { await sleep(Math.max(0, at - Date.now())) }

export async function injectFault (system: BenchSystem, scenario: Scenario, ctx: FaultContext): Promise<void> {
  const fault = scenario.fault
  switch (fault.kind) {
    case 'none':
      return
    case 'connections': {
      await sleepUntil(ctx.t0 + fault.atMs)
      const from = Date.now()
      let killed = 0
      let rounds = 0
      while (Date.now() < from + fault.forMs) {
        killed += await system.disrupt(ctx.admin)
        rounds++
        await sleep(20)
      }
      Object.assign(ctx.record, { killedConnections: killed, rounds, fromMs: from - ctx.t0, forMs: Date.now() - from })
      return
    }
    case 'workers-late': {
      await sleepUntil(ctx.lastDeadline + fault.afterMs)
      const from = Date.now()
      ctx.workers.push(...await system.startWorkers(ctx.cell, scenario.workers))
      Object.assign(ctx.record, { workersStartedAfterLastDeadlineMs: from - ctx.lastDeadline, workersReadyAfterLastDeadlineMs: Date.now() - ctx.lastDeadline })
      return
    }
    case 'redis-restart': {
      await sleepUntil(ctx.t0 + fault.atMs)
      const from = Date.now()
      await ctx.redis.stop()
      const stopped = Date.now()
      await sleep(fault.forMs)
      await ctx.redis.start()
      Object.assign(ctx.record, { stopAtMs: from - ctx.t0, stopTookMs: stopped - from, downMs: Date.now() - from })
      return
    }
    case 'worker-kill': {
      await sleepUntil(ctx.t0 + fault.atMs)
      const victim = ctx.workers[0]
      if (!victim) throw new Error('no worker to kill')
      const killedAt = Date.now()
      victim.proc.kill('SIGKILL')
      await victim.exited
      await sleepUntil(ctx.t0 + fault.replaceAtMs)
      const from = Date.now()
      ctx.workers.push(...await system.startWorkers(ctx.cell, 1))
      Object.assign(ctx.record, {
        killedAt, killedPid: victim.proc.pid ?? 0, killAtMs: killedAt - ctx.t0, replacementReadyMs: Date.now() - from
      })
    }
  }
}
