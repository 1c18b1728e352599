import { setTimeout as sleep } from 'node:timers/promises'
import { Redis } from 'ioredis'

export { sleep }

/** Polls until check() is true; throws after timeoutMs with what it was waiting for. */
export async function until (check: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await sleep(25)
  }
}

/** Runs fn over consecutive slices of items, one slice at a time. */
export async function inChunks<T> (items: T[], size: number, fn: (chunk: T[]) => Promise<void>): Promise<void> {
  for (let i = 0; i < items.length; i += size) await fn(items.slice(i, i + size))
}

/** A plain connection for the benchmark's own commands (CLIENT KILL, CONFIG GET, readiness checks). */
export function adminClient (port: number, name = 'bench:admin'): Redis {
  const redis = new Redis(port, '127.0.0.1', {
    connectionName: name,
    protocol: 2,
    maxRetriesPerRequest: null,
    retryStrategy: () => 50
  })
  redis.on('error', () => {})
  return redis
}

/** Parsed CLIENT LIST. */
export async function clientList (admin: Redis): Promise<Array<Record<string, string>>> {
  const text = String(await admin.client('LIST'))
  return text.split('\n').filter(Boolean).map((line) => {
    const fields: Record<string, string> = {}
    for (const pair of line.trim().split(' ')) {
      const eq = pair.indexOf('=')
      if (eq > 0) fields[pair.slice(0, eq)] = pair.slice(eq + 1)
    }
    return fields
  })
}

/** Waits until every child has printed `ready` (or one exits). */
export async function waitForReadyLine (children: Array<{ output: () => string, proc: { exitCode: number | null } }>, timeoutMs: number): Promise<void> {
  await until(() => {
    for (const c of children) {
      if (c.proc.exitCode !== null) throw new Error(`worker exited (${c.proc.exitCode}) before it was ready:\n${c.output()}`)
    }
    return children.every((c) => /^ready$/m.test(c.output()))
  }, timeoutMs, 'workers to print "ready"')
}

/**
 * How long a fleet of n worker processes may take to start: 20 s, and 10 s
 * more per worker (at most 120 s): eight `node --import tsx` processes
 * starting at once on a busy 2-core machine can take longer than 20 s.
 */
export const readyTimeoutMs = (n: number): number => Math.min(120_000, 20_000 + 10_000 * n)
