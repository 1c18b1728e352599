import { spawn } from 'node:child_process'
import { connect } from 'node:net'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { testConfig } from './helpers/app.js'
import { childEnv } from './helpers/processes.js'
import { freePort } from './helpers/redis.js'
import { until } from './helpers/worker.js'

const root = fileURLToPath(new URL('..', import.meta.url))
const listening = async (port: number) => await new Promise<boolean>((resolve) => {
  const s = connect(port, '127.0.0.1')
  s.once('connect', () => { s.destroy(); resolve(true) })
  s.once('error', () => resolve(false))
})

t.test('npm run dev: starts Redis, the API and the worker; Ctrl-C leaves nothing behind', async (t) => {
  const redisPort = await freePort()
  const apiPort = await freePort()
  const redisUrl = `redis://127.0.0.1:${redisPort}/0`
  const dev = spawn(process.execPath, ['--import', 'tsx', 'scripts/dev.ts'], {
    cwd: root,
    env: childEnv({ REDIS_URL: redisUrl, PORT: String(apiPort), KEY_PREFIX: testConfig(redisUrl).KEY_PREFIX }),
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let out = ''
  dev.stdout.on('data', (d: Buffer) => { out += d.toString() })
  dev.stderr.on('data', (d: Buffer) => { out += d.toString() })
  const exited = new Promise<number | null>((resolve) => dev.once('exit', (code) => resolve(code)))
  t.teardown(() => { if (dev.exitCode === null) dev.kill('SIGKILL') })

  t.ok(await until(() => out.includes('checkout API ready') && out.includes('expiry worker ready'), 20_000, 50), 'all three up')
  t.match(out, /starting redis-server on port/)
  const res = await fetch(`http://127.0.0.1:${apiPort}/checkout`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ id: 'dev-1', ttlMs: 1000 })
  })
  t.equal(res.status, 201)
  t.ok(await until(() => /\[worker\].*order expired/.test(out), 5000, 50), 'the worker handled the expiry')

  dev.kill('SIGINT')
  t.equal(await exited, 0, 'exits 0')
  t.notOk(await listening(apiPort), 'API stopped')
  t.notOk(await listening(redisPort), 'the Redis it started stopped')
})
