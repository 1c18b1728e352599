import { readFileSync } from 'node:fs'
import type { Redis } from 'ioredis'
import type { NodeChild } from './children.js'

/**
 * Where the time goes: CPU used by the worker processes and by redis-server,
 * and Redis's per-command counters, between two samples.
 */
export interface CpuUse {
  /** CPU time of the worker processes, summed, ms. */
  workersMs: number
  /** CPU time of redis-server, ms (since its restart in scenario E). */
  redisMs: number
  /** Calls and time per Redis command (INFO commandstats). */
  commands: Record<string, { calls: number, usec: number }>
}

/** CPU time (user + system, ms) a process has used so far, from /proc; undefined where there is no /proc. */
export function cpuMs (pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    // utime and stime are fields 14 and 15 of the line, 11 and 12 after the name; in clock ticks (100 per second).
    return (Number(fields[11]) + Number(fields[12])) * 10
  } catch {
    return undefined
  }
}

/** CPU time (ms) of each worker process and of redis-server, and Redis's per-command counters, to take differences of. */
export interface CpuSample {
  workers: Map<number, number>
  redis: number
  /** Changes when redis-server restarts (and its counters start from zero). */
  redisRunId: string
  commands: Map<string, { calls: number, usec: number }>
}

export async function sampleCpu (admin: Redis, workers: NodeChild[]): Promise<CpuSample> {
  const sample: CpuSample = { workers: new Map(), redis: Number.NaN, redisRunId: '', commands: new Map() }
  for (const w of workers) {
    const pid = w.proc.pid
    const ms = cpuMs(pid)
    if (pid !== undefined && ms !== undefined) sample.workers.set(pid, ms)
  }
  const info = String(await admin.info('cpu')) + String(await admin.info('server'))
  const field = (name: string) => Number(new RegExp(`^${name}:([0-9.]+)`, 'm').exec(info)?.[1])
  sample.redis = Math.round((field('used_cpu_user') + field('used_cpu_sys')) * 1000)
  sample.redisRunId = /^run_id:(\w+)/m.exec(info)?.[1] ?? ''
  const stats = String(await admin.info('commandstats'))
  for (const m of stats.matchAll(/^cmdstat_(\S+?):calls=(\d+),usec=(\d+)/gm)) {
    sample.commands.set(m[1] as string, { calls: Number(m[2]), usec: Number(m[3]) })
  }
  return sample
}

/** CPU used between two samples; a worker first seen in `to` counts from its start, and so does a restarted Redis. */
export function cpuBetween (from: CpuSample, to: CpuSample): CpuUse {
  let workersMs = 0
  for (const [pid, ms] of to.workers) workersMs += ms - (from.workers.get(pid) ?? 0)
  const restarted = to.redisRunId !== from.redisRunId
  const redisMs = restarted ? to.redis : to.redis - from.redis
  const commands: Record<string, { calls: number, usec: number }> = {}
  for (const [name, c] of to.commands) {
    const before = restarted ? undefined : from.commands.get(name)
    const calls = c.calls - (before?.calls ?? 0)
    if (calls > 0) commands[name] = { calls, usec: c.usec - (before?.usec ?? 0) }
  }
  return { workersMs, redisMs, commands }
}
