import { createServer } from 'node:net'
import t from 'tap'
import { testConfig } from './helpers/app.js'
import { startChild, startWorker } from './helpers/processes.js'
import { startRedis } from './helpers/redis.js'
import { until } from './helpers/worker.js'

/** The worker process serves its HTTP port as configured: 0 picks one and logs it, -1 serves none, a taken one stops it. */
const redis = await startRedis()
t.teardown(redis.stop)
const baseEnv = () => ({ REDIS_URL: redis.url, KEY_PREFIX: testConfig(redis.url).KEY_PREFIX, LOG_LEVEL: 'info' })

/** The port of the "worker http listening" log line. */
function loggedPort (output: string): number | undefined {
  for (const line of output.split('\n')) {
    if (!line.includes('worker http listening')) continue
    return (JSON.parse(line) as { port: number }).port
  }
  return undefined
}

t.test('WORKER_HTTP_PORT=0: a free port, logged; ready while running; closed with the process', async (t) => {
  const worker = await startWorker({ ...baseEnv(), WORKER_HTTP_PORT: '0' })
  t.teardown(() => { if (worker.proc.exitCode === null) worker.proc.kill('SIGKILL') })
  const port = loggedPort(worker.output())
  t.ok(port !== undefined && port > 0, `logged port ${port}`)
  const readyz = async () => (await fetch(`http://127.0.0.1:${port}/readyz`, { signal: AbortSignal.timeout(2000) })).status
  t.ok(await until(async () => await readyz() === 200, 5000), 'ready')
  const metrics = await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(2000) })
  t.match(await metrics.text(), /^checkout_expiry_subscriber_connected 1$/m)
  const { code } = await worker.signal('SIGTERM')
  t.equal(code, 0)
  await t.rejects(readyz(), 'the port is closed')
})

t.test('WORKER_HTTP_PORT=-1 serves nothing', async (t) => {
  const worker = await startWorker({ ...baseEnv(), WORKER_HTTP_PORT: '-1' })
  t.equal(loggedPort(worker.output()), undefined)
  t.equal((await worker.signal('SIGTERM')).code, 0)
})

t.test('a taken port stops the worker with one line naming the variable', async (t) => {
  const taken = createServer()
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve))
  t.teardown(() => taken.close())
  const { port } = taken.address() as { port: number }
  const worker = startChild('workers/expiry-worker.ts', { ...baseEnv(), WORKER_HTTP_PORT: String(port), LOG_LEVEL: 'silent' })
  const { code } = await worker.exited
  t.equal(code, 1)
  t.equal(worker.output().trim(),
    `checkout-expiry: Invalid WORKER_HTTP_PORT=${port}: cannot listen on 127.0.0.1:${port} (EADDRINUSE); -1 turns the worker's HTTP server off`)
})
