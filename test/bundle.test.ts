import { execFile, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import t from 'tap'
import { freePort, startRedis } from './helpers/redis.js'
import { tempDir } from './helpers/temp.js'

/**
 * The bundles (scripts/bundle.mjs) run from a directory that holds nothing
 * but themselves: no source tree, no node_modules, no Lua file on disk.
 */
const run = promisify(execFile)
const root = fileURLToPath(new URL('../', import.meta.url))
const redis = await startRedis()
t.teardown(redis.stop)
const dir = tempDir(t, 'bundle')
await run(process.execPath, [join(root, 'scripts/bundle.mjs'), dir])
const env: NodeJS.ProcessEnv = { ...process.env, REDIS_URL: redis.url, KEY_PREFIX: `t${randomBytes(4).toString('hex')}:`, LOG_LEVEL: 'info' }
delete env.NODE_V8_COVERAGE

/** Starts a bundle in the temp directory; resolves once its output shows `ready`. */
async function start (file: string, extra: Record<string, string>, ready: string) {
  const proc = spawn(process.execPath, [file], { cwd: dir, env: { ...env, ...extra }, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  proc.stdout.on('data', (d: Buffer) => { out += d.toString() })
  proc.stderr.on('data', (d: Buffer) => { out += d.toString() })
  const exited = new Promise((resolve) => proc.once('exit', resolve))
  t.teardown(async () => { if (proc.exitCode === null) { proc.kill('SIGKILL'); await exited } })
  const waitFor = async (text: string, timeoutMs = 15_000) => {
    const deadline = Date.now() + timeoutMs
    while (!out.includes(text)) {
      if (Date.now() > deadline || proc.exitCode !== null) throw new Error(`${file}: no "${text}"; output:\n${out}`)
      await new Promise((resolve) => setTimeout(resolve, 25))
    }
  }
  await waitFor(ready)
  return { waitFor, stop: async () => { proc.kill('SIGTERM'); return await exited } }
}

t.test('the directory holds only bundles, the /docs files and the dashboard page', async (t) => {
  t.same(readdirSync(dir).filter((f) => !f.endsWith('.map') && !f.endsWith('.LEGAL.txt')).sort(),
    ['checkoutctl.mjs', 'dashboard', 'expiry-worker.mjs', 'lambda-sweep.mjs', 'lambda.mjs', 'server.mjs', 'swagger-ui'])
})

t.test('server, worker and checkoutctl bundles: a hold is created, read and expires', async (t) => {
  const port = await freePort()
  const api = await start('server.mjs', { PORT: String(port), DASHBOARD: 'true', ADMIN_TOKENS: 'bundle-admin-token-0123456789' }, 'checkout API ready')
  const base = `http://127.0.0.1:${port}`
  const created = await fetch(`${base}/checkout`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ id: 'bundled', ttlMs: 1000 })
  })
  t.equal(created.status, 201, 'POST 201: the Lua scripts came with the bundle')
  t.equal((await fetch(`${base}/checkout/bundled`)).status, 200, 'GET 200')
  const css = await fetch(`${base}/docs/static/swagger-ui.css`)
  t.equal(css.status, 200, '/docs serves its files')
  await css.arrayBuffer()
  for (const path of ['/dashboard', '/dashboard/vendor/uPlot.iife.min.js']) {
    const file = await fetch(`${base}${path}`)
    t.equal(file.status, 200, `the dashboard bundle serves ${path}`)
    await file.arrayBuffer()
  }

  const worker = await start('expiry-worker.mjs', { WORKER_HTTP_PORT: '0' }, 'expiry worker ready')
  await worker.waitFor('order expired')
  t.pass('the worker bundle ran the expiry')

  const ctl = await run(process.execPath, ['checkoutctl.mjs', 'stats'], { cwd: dir, env })
  t.match(ctl.stdout, /pending holds\s+0/, 'checkoutctl bundle reads the stats')
  await Promise.all([api.stop(), worker.stop()])
})

t.test('the lambda bundle answers an HTTP API event', async (t) => {
  const event = { version: '2.0', rawPath: '/checkout/bundled', headers: {}, requestContext: { http: { method: 'GET', path: '/checkout/bundled', sourceIp: '203.0.113.10' } } }
  const script = `const { handler, close } = await import('./lambda.mjs'); const res = await handler(${JSON.stringify(event)}, {}); ` +
    'process.stdout.write(JSON.stringify(res)); await close()'
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], { cwd: dir, env: { ...env, LOG_LEVEL: 'silent' } })
  const res = JSON.parse(stdout) as { statusCode: number, body: string }
  t.equal(res.statusCode, 200)
  t.match(JSON.parse(res.body), { id: 'bundled', status: 'expired' })
})
