import type { Redis } from 'ioredis'

/** The redis-server's pid, from INFO (the test spawned it: the process backend). */
export async function redisPid (client: Redis): Promise<number> {
  const info = await client.info('server')
  const pid = Number(/process_id:(\d+)/.exec(info)?.[1])
  if (!Number.isInteger(pid) || pid <= 0) throw new Error('no process_id in INFO server')
  return pid
}

/** Freezes redis-server (SIGSTOP) for ms, then lets it go on (SIGCONT): a hung but connected Redis. */
export async function pauseRedis (pid: number, ms: number): Promise<void> {
  process.kill(pid, 'SIGSTOP')
  try {
    await new Promise((resolve) => setTimeout(resolve, ms))
  } finally {
    process.kill(pid, 'SIGCONT')
  }
}
