import type { ChildProcess } from 'node:child_process'
import type { Redis } from 'ioredis'
import type { NodeChild } from './children.js'
import type { BenchRedis } from './redis-server.js'
import type { Scenario } from './scenarios.js'
import type { BenchSystem, Cell } from './systems/types.js'
import { clientList, sleep } from './util.js'

/**
 * The faults of scenarios C to F, K and L, timed against the window: cut the
 * workers off, start them late, restart Redis, SIGKILL a worker and start a
 * replacement, start a worker and SIGTERM another (a rebalance), or stop a
 * worker for a while (SIGSTOP, SIGCONT). Each records what it did.
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

/** How long a worker stopped with SIGTERM gets to finish its handlers before it is SIGKILLed (its SHUTDOWN_TIMEOUT_MS is 10 s). */
const LEAVE_GRACE_MS = 15_000
/** After SIGCONT, how long to wait before reading the stalled worker's log: long enough for it to learn it was reaped, had it been. */
const AFTER_STALL_MS = 1_500
/** The line a worker logs (at warn) when the others reaped it (src/expiry/heartbeat.ts). */
const REAPED_LINE = 'judged this worker lapsed'

/**
 * Workers stopped with SIGSTOP right now. The stall continues them in a
 * finally; should the benchmark exit in between, they are continued here
 * (killAll in bench/children.ts SIGKILLs them too: SIGKILL ends a stopped
 * process as well).
 */
const stopped = new Set<ChildProcess>()
process.on('exit', () => {
  for (const proc of stopped) proc.kill('SIGCONT')
  stopped.clear()
})

/** The client ids of checkout-expiry's subscribed subscriber connections. */
async function subscriberIds (admin: Redis): Promise<Set<string>> {
  return new Set((await clientList(admin))
    .filter((c) => c.name === 'checkout-expiry:subscriber' && Number(c.psub) > 0)
    .map((c) => c.id ?? ''))
}

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
      return
    }
    case 'rebalance': {
      const victim = ctx.workers[0]
      if (!victim) throw new Error('no worker to stop')
      const join = async () => {
        await sleepUntil(ctx.t0 + fault.joinAtMs)
        // Only checkout-expiry's subscriber connection says when a worker is ready (see bench/systems/ours.ts).
        const before = system.name === 'ours' ? await subscriberIds(ctx.admin) : undefined
        const joinAt = Date.now()
        const joiners = await system.startWorkers(ctx.cell, 1)
        ctx.workers.push(...joiners)
        Object.assign(ctx.record, { joinAt, joinAtMs: joinAt - ctx.t0, joinerPid: joiners[0]?.proc.pid ?? 0, joinerStartReturnedMs: Date.now() - joinAt })
        if (before === undefined) return
        // startWorkers counts subscribers, which the first workers already are: wait for a new one.
        const limit = joinAt + 20_000
        while (Date.now() < limit) {
          const now = await subscriberIds(ctx.admin)
          if ([...now].some((id) => !before.has(id))) {
            ctx.record.joinerSubscribedMs = Date.now() - joinAt
            return
          }
          await sleep(25)
        }
      }
      const leave = async () => {
        await sleepUntil(ctx.t0 + fault.leaveAtMs)
        const leaveAt = Date.now()
        await victim.stop(LEAVE_GRACE_MS)
        Object.assign(ctx.record, {
          leaveAt,
          leaveAtMs: leaveAt - ctx.t0,
          leaverPid: victim.proc.pid ?? 0,
          leaverExitMs: Date.now() - leaveAt,
          leaverExitCode: victim.proc.exitCode ?? -1,
          leaverSigkilled: victim.proc.signalCode === 'SIGKILL' ? 1 : 0
        })
      }
      await Promise.all([join(), leave()])
      return
    }
    case 'worker-stall': {
      await sleepUntil(ctx.t0 + fault.atMs)
      const victim = ctx.workers[0]
      if (!victim) throw new Error('no worker to stop')
      const proc = victim.proc
      if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`the worker to stall had already exited (${proc.exitCode ?? proc.signalCode})`)
      const stoppedAt = Date.now()
      stopped.add(proc)
      proc.kill('SIGSTOP')
      let continuedAt: number
      try {
        await sleep(fault.forMs)
      } finally {
        proc.kill('SIGCONT')
        stopped.delete(proc)
        continuedAt = Date.now()
      }
      await sleep(AFTER_STALL_MS)
      Object.assign(ctx.record, {
        stalledPid: proc.pid ?? 0,
        stoppedAt,
        continuedAt,
        stopAtMs: stoppedAt - ctx.t0,
        stoppedMs: continuedAt - stoppedAt,
        reaped: victim.output().includes(REAPED_LINE) ? 1 : 0
      })
    }
  }
}
