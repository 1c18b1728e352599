import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdirSync, rmSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { Writable } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { Redis } from 'ioredis'
import pretty from 'pino-pretty'
import { redactUrl } from '../src/logger.js'

/**
 * `npm run dev`: the whole stack on one machine without Docker. Uses the Redis
 * at REDIS_URL, or starts one from redis.conf when nothing answers on a
 * loopback address (data in DEV_REDIS_DIR, default .dev/redis; `npm run dev
 * -- --fresh` empties it first); then runs the API and the expiry worker, each
 * child's lines under a coloured tag. Ctrl-C, SIGTERM (to this script or to
 * npm), SIGHUP (the terminal closed) and the death of the parent process all
 * stop the API and the worker, then the Redis this script started, and
 * nothing else.
 */
const root = fileURLToPath(new URL('..', import.meta.url))
const redisUrl = process.env.REDIS_URL || 'redis://127.0.0.1:6379/0'
const redisDir = resolve(root, process.env.DEV_REDIS_DIR || join('.dev', 'redis'))
const fresh = process.argv.includes('--fresh')
const tty = process.stdout.isTTY === true
const colours = { dev: 35, redis: 31, api: 32, worker: 36 } as const
type Name = keyof typeof colours
const tag = (name: Name) => (tty ? `\x1b[${colours[name]}m[${name}]\x1b[0m` : `[${name}]`)
const say = (line: string) => process.stdout.write(`${tag('dev')} ${line}\n`)

/** Writes each complete line it receives to `out`, under the tag. */
function tagged (name: Name, out: NodeJS.WriteStream): Writable {
  let rest = ''
  return new Writable({
    write (chunk: Buffer, _encoding, done) {
      const lines = (rest + chunk.toString()).split('\n')
      rest = lines.pop() ?? ''
      for (const line of lines) out.write(`${tag(name)} ${line}\n`)
      done()
    },
    final (done) {
      if (rest !== '') out.write(`${tag(name)} ${rest}\n`)
      done()
    }
  })
}

/** 'PONG'; an error reply such as NOAUTH or LOADING (something answered); '' when nothing did. */
async function ping (url: string): Promise<string> {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 500 })
  redis.on('error', () => {})
  try {
    return await redis.ping()
  } catch (err) {
    return err instanceof Error && err.name === 'ReplyError' ? err.message : ''
  } finally {
    redis.disconnect()
  }
}

interface Child { process: ChildProcess, closed: Promise<void> }
const children = new Map<Name, Child>()
let stopping = false

function start (name: Name, command: string, args: string[]): void {
  // Own process group: a Ctrl-C in the terminal reaches only this script, which
  // then stops the children in order (Redis last, after the worker's final acks).
  const child = spawn(command, args, {
    cwd: root, env: { ...process.env, REDIS_URL: redisUrl }, stdio: ['ignore', 'pipe', 'pipe'], detached: true
  })
  // Piped children log JSON (their stdout is not a TTY); prettify it here for a person.
  const out = tagged(name, process.stdout)
  child.stdout.pipe(tty && name !== 'redis'
    ? pretty({ colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname', destination: out })
    : out)
  child.stderr.pipe(tagged(name, process.stderr))
  const closed = new Promise<void>((resolve) => child.once('close', () => resolve()))
  child.once('exit', (code, signal) => {
    if (stopping) return
    say(`${name} exited unexpectedly (${signal ?? `code ${code}`}); stopping the others`)
    void stop(1)
  })
  child.once('error', (err) => {
    say(`${name} could not start: ${err.message}`)
    void stop(1)
  })
  children.set(name, { process: child, closed })
}

/** SIGTERM, then SIGKILL when the child is still running after timeoutMs. */
async function stopChild (name: Name, timeoutMs: number): Promise<void> {
  const child = children.get(name)
  if (!child) return
  const proc = child.process
  if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM')
  const timer = setTimeout(() => {
    say(`${name} still running after ${timeoutMs / 1000} s; killing it`)
    proc.kill('SIGKILL')
  }, timeoutMs)
  await child.closed
  clearTimeout(timer)
}

async function stop (code: number): Promise<void> {
  if (stopping) return
  stopping = true
  await Promise.all([stopChild('api', 15_000), stopChild('worker', 15_000)])
  await stopChild('redis', 15_000)
  process.exit(code)
}

// A terminal Ctrl-C may arrive twice (from the terminal and forwarded by npm); stop() runs once.
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(signal, () => {
    if (!stopping) say(`${signal}: stopping`)
    void stop(0)
  })
}
// npm exits on SIGTERM without passing it on: when the parent goes away, so does the stack.
const parent = process.ppid
setInterval(() => {
  if (process.ppid === parent || stopping) return
  say('the parent process is gone: stopping')
  void stop(0)
}, 250).unref()
// Last resort if this script dies some other way: leave no child behind.
process.on('exit', () => {
  for (const { process: proc } of children.values()) if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL')
})

const url = new URL(redisUrl)
const host = url.hostname.replace(/^\[|\]$/g, '')
const loopback = host === 'localhost' || host === '::1' || /^127\./.test(host)
const first = await ping(redisUrl)
if (first !== '') {
  say(`using the Redis at ${redactUrl(redisUrl)}${first === 'PONG' ? '' : ` (it answered: ${first})`}`)
  if (fresh) say('--fresh applies only to a Redis this script starts; the running one is left as it is')
} else {
  if (!loopback || url.protocol !== 'redis:') {
    process.stderr.write(`Nothing answers at ${redactUrl(redisUrl)}. Start that Redis, or use a redis:// URL on 127.0.0.1 to have one started.\n`)
    process.exit(1)
  }
  if (spawnSync('redis-server', ['--version']).error) {
    process.stderr.write(`Nothing answers at ${redactUrl(redisUrl)} and redis-server is not on PATH. Install it:\n` +
      '  Debian/Ubuntu: sudo apt-get install -y redis-server\n' +
      '  macOS:         brew install redis\n')
    process.exit(1)
  }
  if (fresh) {
    rmSync(redisDir, { recursive: true, force: true })
    say(`--fresh: emptied ${redisDir}`)
  }
  mkdirSync(redisDir, { recursive: true })
  const port = url.port || '6379'
  const auth = url.password ? ['--requirepass', decodeURIComponent(url.password)] : []
  say(`starting redis-server on port ${port} (data in ${redisDir})`)
  start('redis', 'redis-server', [join(root, 'redis.conf'), '--port', port, '--dir', redisDir, ...auth])
  const deadline = Date.now() + 10_000
  for (let reply = ''; !stopping && (reply === '' || reply.startsWith('LOADING')); reply = await ping(redisUrl)) {
    if (Date.now() > deadline) {
      say('redis-server did not answer within 10 s')
      void stop(1)
    }
    await sleep(100)
  }
}
if (!stopping) {
  start('api', process.execPath, ['--import', 'tsx', 'src/server.ts'])
  start('worker', process.execPath, ['--import', 'tsx', 'workers/expiry-worker.ts'])
}
