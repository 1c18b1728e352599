import { spawn, spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t, { type Test } from 'tap'
import { childEnv } from './helpers/processes.js'
import { freePort, startRedis } from './helpers/redis.js'
import { until } from './helpers/worker.js'

/**
 * The README's quickstart, run as written: each shell block marked
 * `<!-- quickstart:<name> -->` goes to `sh -c` from the repository root, in
 * the README's order, the long-running ones (the stack, the receiver, the
 * consumer) in the background. Only where things are differs: REDIS_URL
 * names this test's Redis, and the ports 3000 (API) and 8080 (receiver) are
 * swapped for free ones, so the test never touches a developer's stack.
 */
const root = fileURLToPath(new URL('../', import.meta.url))
const readme = readFileSync(join(root, 'README.md'), 'utf8')

function block (name: string): string {
  const found = readme.match(new RegExp(`<!-- quickstart:${name} -->\\n\`\`\`sh\\n([\\s\\S]*?)\`\`\``))
  if (!found?.[1]) throw new Error(`README.md has no block marked quickstart:${name}`)
  return found[1]
}

interface Shell { output: () => string, exited: Promise<number | null>, stop: () => Promise<void> }

/** Runs one block in its own process group, so stopping it stops everything it started. */
function sh (t: Test, script: string, env: Record<string, string>): Shell {
  const proc = spawn('sh', ['-c', script], { cwd: root, env: childEnv(env), stdio: ['ignore', 'pipe', 'pipe'], detached: true })
  let out = ''
  proc.stdout.on('data', (d: Buffer) => { out += d.toString() })
  proc.stderr.on('data', (d: Buffer) => { out += d.toString() })
  // 'close': every process that held its output has gone (npm run dev's API and worker are not in its group).
  const exited = new Promise<number | null>((resolve) => proc.once('close', (code) => resolve(code)))
  const signalGroup = (sig: NodeJS.Signals) => {
    try { process.kill(-(proc.pid as number), sig) } catch { /* already gone */ }
  }
  const stop = async () => {
    if (proc.exitCode !== null || proc.signalCode !== null) return
    signalGroup('SIGTERM')
    const timer = setTimeout(() => signalGroup('SIGKILL'), 15_000)
    await exited
    clearTimeout(timer)
  }
  t.teardown(stop)
  return { output: () => out, exited, stop }
}

const python = spawnSync('python3', ['--version']).status === 0

t.test('the README quickstart runs as pasted', { skip: python ? false : 'python3 is not installed (the receiver block)' }, async (t) => {
  const redis = await startRedis()
  t.teardown(redis.stop)
  const [apiPort, receiverPort] = [await freePort(), await freePort()]
  const env = { REDIS_URL: redis.url, PORT: String(apiPort), WORKER_HTTP_PORT: '0' }
  const where = (script: string) => script.replaceAll('localhost:3000', `127.0.0.1:${apiPort}`).replaceAll('8080', String(receiverPort))
  const finishes = async (name: string, timeoutMs: number) => {
    const run = sh(t, where(block(name)), env)
    const timer = setTimeout(() => { void run.stop() }, timeoutMs)
    const code = await run.exited
    clearTimeout(timer)
    t.equal(code, 0, `block ${name} exits 0`)
    return run.output()
  }
  const shows = async (run: Shell, pattern: RegExp, what: string, timeoutMs = 20_000) => {
    if (!t.ok(await until(() => pattern.test(run.output()), timeoutMs, 50), what)) t.comment(run.output())
  }

  const stack = sh(t, where(block('stack')), env)
  await shows(stack, /checkout API ready[\s\S]*expiry worker ready|expiry worker ready[\s\S]*checkout API ready/, 'npm run dev: API and worker ready', 60_000)

  const holds = await finishes('holds', 30_000)
  t.match(holds, /"id":"qs-1","status":"pending"/)
  t.match(holds, /"id":"qs-1","status":"completed"/)
  t.match(holds, /"id":"qs-2","status":"cancelled"/)
  t.match(holds, /"id":"qs-3","status":"pending".*"ttlMs":600000/)

  const expired = await finishes('expire', 60_000)
  t.match(expired, /outcome\s+dead/, 'the 5-second hold expired and died: its receiver is down')
  t.match(expired, /qs-4/, 'listed among the dead letters')
  await shows(stack, /stock released/, 'the worker log shows the example handler at work')

  const receiver = sh(t, where(block('receiver')), env)
  await shows(receiver, /listening on/, 'the receiver is up')
  const replayed = await finishes('replay', 60_000)
  t.match(replayed, /replayed\s+\d+:qs-4/)
  t.match(replayed, /outcome\s+handled/, 'handled once the receiver is up')
  await shows(receiver, /expired qs-4 /, 'the receiver verified and handled it')
  t.match(stack.output(), /stock already released for this expiry/, 'the replay did not release the stock twice')

  const consumer = sh(t, where(block('consumer')), env)
  for (const line of ['created qs-1', 'completed qs-1', 'cancelled qs-2', 'extended qs-3', 'expired qs-4', 'dead qs-4']) {
    await shows(consumer, new RegExp(`^${line} `, 'm'), `the consumer reads "${line}"`)
  }
  await consumer.stop()
  await receiver.stop()
  await stack.stop()
})
