import { execFileSync, spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { childEnv } from '../helpers/processes.js'
import { freePort, startRedis } from '../helpers/redis.js'

/**
 * The README's production commands, `npm start` and `npm run worker`, with
 * SIGTERM sent to the one pid a supervisor started (npm's): the node process
 * must get it and shut down gracefully, not be orphaned still serving.
 */
const root = fileURLToPath(new URL('../../', import.meta.url))
// CI builds before it tests; a checkout that never built gets the build here.
if (!existsSync(`${root}dist/src/server.js`)) execFileSync('npm', ['run', 'build'], { cwd: root, stdio: 'ignore' })

const redis = await startRedis()
t.teardown(redis.stop)

const alive = (pgid: number) => {
  try {
    process.kill(-pgid, 0)
    return true
  } catch {
    return false
  }
}
const answers = async (port: number) => await fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(1000) }).then((r) => r.ok, () => false)
const until = async (check: () => Promise<boolean> | boolean, ms: number) => {
  const deadline = Date.now() + ms
  while (Date.now() < deadline) {
    if (await check()) return true
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  return false
}

for (const [script, portVar] of [['start', 'PORT'], ['worker', 'WORKER_HTTP_PORT']] as const) {
  t.test(`SIGTERM to the npm pid of "npm ${script === 'start' ? 'start' : 'run worker'}" reaches node: the port closes, nothing is left`, async (t) => {
    const port = await freePort()
    const npm = spawn('npm', script === 'start' ? ['start'] : ['run', 'worker'], {
      cwd: root,
      // Its own process group, like a supervisor's child, so the test can see everything it started.
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: childEnv({ REDIS_URL: redis.url, KEY_PREFIX: `npmsig${script}:`, [portVar]: String(port), SHUTDOWN_TIMEOUT_MS: '2000', LOG_LEVEL: 'info' })
    })
    let out = ''
    npm.stdout.on('data', (d: Buffer) => { out += d.toString() })
    npm.stderr.on('data', (d: Buffer) => { out += d.toString() })
    const pgid = npm.pid as number
    t.teardown(() => { if (alive(pgid)) process.kill(-pgid, 'SIGKILL') })
    t.ok(await until(async () => await answers(port), 30_000), `serving on ${port}`)
    // The worker's port opens before it is ready; signals are handled from then on.
    t.ok(await until(() => /checkout API ready|expiry worker ready/.test(out), 30_000), 'ready')
    npm.kill('SIGTERM')
    t.ok(await until(async () => !await answers(port), 8000), 'the port closes within the shutdown deadline')
    t.ok(await until(() => !alive(pgid), 8000), 'no process of the group is left')
    // The last lines may still be on their way through the pipe.
    t.ok(await until(() => /"signal":"SIGTERM".*shutting down/.test(out), 2000), 'node itself shut down on SIGTERM')
  })
}
