import { spawn } from 'node:child_process'
import { connect } from 'node:net'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t, { type Test } from 'tap'
import { testConfig } from './helpers/app.js'
import { childEnv } from './helpers/processes.js'
import { freePort } from './helpers/redis.js'
import { tempDir } from './helpers/temp.js'
import { until } from './helpers/worker.js'

/**
 * `npm run dev` as a developer runs it, in a process group of its own like a
 * terminal session: every way of stopping it stops Redis, the API and the
 * worker.
 */
const root = fileURLToPath(new URL('..', import.meta.url))
const listening = async (port: number) => await new Promise<boolean>((resolve) => {
  const s = connect(port, '127.0.0.1')
  s.once('connect', () => { s.destroy(); resolve(true) })
  s.once('error', () => resolve(false))
})
const alive = (pid: number) => { try { process.kill(pid, 0); return true } catch { return false } }

async function devStack (t: Test, args: string[] = [], sharedDir?: string) {
  const redisPort = await freePort()
  const apiPort = await freePort()
  const redisUrl = `redis://127.0.0.1:${redisPort}/0`
  const dataDir = sharedDir ?? tempDir(t, 'dev')
  const npm = spawn('npm', ['run', '--silent', 'dev', '--', ...args], {
    cwd: root,
    env: childEnv({ REDIS_URL: redisUrl, PORT: String(apiPort), KEY_PREFIX: sharedDir ? 'dev-shared:' : testConfig(redisUrl).KEY_PREFIX, DEV_REDIS_DIR: join(dataDir, 'redis') }),
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true
  })
  let out = ''
  npm.stdout.on('data', (d: Buffer) => { out += d.toString() })
  npm.stderr.on('data', (d: Buffer) => { out += d.toString() })
  const exited = new Promise<number | null>((resolve) => npm.once('exit', (code) => resolve(code)))
  const pids: number[] = []
  t.teardown(() => {
    for (const pid of pids) if (alive(pid)) process.kill(pid, 'SIGKILL')
    try { process.kill(-npm.pid!, 'SIGKILL') } catch { /* already gone */ }
  })
  t.ok(await until(() => out.includes('checkout API ready') && out.includes('expiry worker ready'), 30_000, 50), 'all three up')
  // The API and the worker log their pid; the Redis is found by its port.
  for (const m of out.matchAll(/"pid":(\d+)/g)) if (!pids.includes(Number(m[1]))) pids.push(Number(m[1]))
  return { npm, exited, redisPort, apiPort, pids, output: () => out }
}

async function expectAllStopped (t: Test, stack: Awaited<ReturnType<typeof devStack>>) {
  t.ok(await until(async () => !(await listening(stack.apiPort)) && !(await listening(stack.redisPort)) &&
    stack.pids.every((pid) => !alive(pid)), 20_000, 100), 'Redis, the API and the worker stopped')
  t.ok(stack.pids.length >= 2, `the API and the worker were seen (${stack.pids.join(', ')})`)
}

t.test('Ctrl-C (SIGINT to the process group): an expiry was handled, then everything stops, exit 0', async (t) => {
  const stack = await devStack(t)
  t.match(stack.output(), /starting redis-server on port/)
  const res = await fetch(`http://127.0.0.1:${stack.apiPort}/checkout`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ id: 'dev-1', ttlMs: 1000 })
  })
  t.equal(res.status, 201)
  t.ok(await until(() => /\[worker\].*order expired/.test(stack.output()), 5000, 50), 'the worker handled the expiry')
  process.kill(-stack.npm.pid!, 'SIGINT')
  await stack.exited
  await expectAllStopped(t, stack)
  t.match(stack.output(), /SIGINT: stopping/)
})

t.test('Redis data outlives a restart of the stack; --fresh starts from an empty data directory; SIGTERM to npm alone and SIGHUP stop everything', async (t) => {
  const dataDir = tempDir(t, 'dev-data')
  const run = async (args: string[] = []) => await devStack(t, args, dataDir)
  const read = async (stack: Awaited<ReturnType<typeof devStack>>) => (await fetch(`http://127.0.0.1:${stack.apiPort}/checkout/dev-kept`)).status

  const first = await run()
  await fetch(`http://127.0.0.1:${first.apiPort}/checkout`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ id: 'dev-kept', ttlMs: 3_600_000 })
  })
  t.equal(await read(first), 200)
  // SIGTERM to npm alone (a process manager stopping the script).
  first.npm.kill('SIGTERM')
  await first.exited
  await expectAllStopped(t, first)

  const second = await run()
  t.equal(await read(second), 200, 'kept without --fresh')
  // SIGHUP to the process group: the terminal closed.
  process.kill(-second.npm.pid!, 'SIGHUP')
  await expectAllStopped(t, second)

  const third = await run(['--fresh'])
  t.match(third.output(), /--fresh: emptied/)
  t.equal(await read(third), 404, 'gone with --fresh')
  process.kill(-third.npm.pid!, 'SIGINT')
  await expectAllStopped(t, third)
})
