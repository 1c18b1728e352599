import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { childEnv, entryArgs, type Entry } from './helpers/processes.js'
import { freePort } from './helpers/redis.js'

/**
 * The real entry points (API, worker, checkoutctl) started with settings that
 * carry a password: whatever they print on the way out never contains it.
 * None of these cases reaches a Redis (the settings are refused first, or
 * nothing listens on the port), so no server is started.
 */
const root = fileURLToPath(new URL('../', import.meta.url))
const PASSWORD = 'hunter2-Zq9'
const ENTRIES = {
  api: ['src/server.ts'],
  worker: ['workers/expiry-worker.ts'],
  // --json prints the error twice: the line on stderr and the JSON document on stdout.
  cli: ['bin/checkoutctl.ts', 'stats', '--json']
} as const

interface Exit { code: number | null, out: string }

/** Runs an entry to its exit, or until it printed `stopAt` (then SIGTERM), with all it printed; killed after 60 s. */
async function run ([entry, ...args]: readonly [Entry, ...string[]], env: Record<string, string>, stopAt?: RegExp): Promise<Exit> {
  const proc = spawn(process.execPath, [...entryArgs(entry), ...args], {
    cwd: root, env: childEnv({ LOG_LEVEL: 'info', WORKER_HTTP_PORT: '0', PORT: '0', ...env }), stdio: ['ignore', 'pipe', 'pipe']
  })
  let out = ''
  const collect = (d: Buffer) => {
    out += d.toString()
    if (stopAt?.test(out)) proc.kill('SIGTERM')
  }
  proc.stdout.on('data', collect)
  proc.stderr.on('data', collect)
  const timer = setTimeout(() => proc.kill('SIGKILL'), 60_000)
  const code = await new Promise<number | null>((resolve) => proc.once('exit', (c) => resolve(c)))
  clearTimeout(timer)
  return { code, out }
}

/** Two at a time: the machines that run the tests have few cores, and each child compiles our sources. */
async function inPairs<T> (tasks: Array<() => Promise<T>>): Promise<T[]> {
  const results: T[] = []
  for (let i = 0; i < tasks.length; i += 2) results.push(...await Promise.all(tasks.slice(i, i + 2).map(async (task) => await task())))
  return results
}

// Every malformed form is checked against the real loader in test/config.test.ts; here one of each kind.
// REDIS_URL goes through every process; the others through the one that uses them (all share the loader).
const refused: Array<[string, Record<string, string>, Array<keyof typeof ENTRIES>]> = [
  ['REDIS_URL', { REDIS_URL: `http://app:${PASSWORD}@redis.internal:6379/0` }, ['api', 'worker', 'cli']],
  ['REDIS_REPLICA_URL', { REDIS_READ_FROM: 'replica', REDIS_REPLICA_URL: `redis://app:${PASSWORD}@reader.internal:99999` }, ['api']],
  ['WEBHOOK_URL', { EXPIRY_HANDLERS: 'webhook', WEBHOOK_SECRET: 'whsec_1', WEBHOOK_URL: `https://hook:${PASSWORD}@hooks.example/expired` }, ['worker']]
]

for (const [name, env, entries] of refused) {
  t.test(`${name} with a password, refused at start: the one line names ${name}, never the password`, async (t) => {
    const results = await inPairs(entries.map((entry) => async () => [entry, await run(ENTRIES[entry], env)] as const))
    for (const [entry, { code, out }] of results) {
      t.equal(code, 1, `${entry} exits 1`)
      t.match(out, new RegExp(`Invalid ${name}\\b`), `${entry} names ${name}`)
      t.notMatch(out, PASSWORD, `${entry}: no password in ${JSON.stringify(out.slice(0, 300))}`)
    }
  })
}

t.test('REDIS_URL with a password and no Redis behind it: the API\'s startup lines and CLI errors never show the password', async (t) => {
  const port = await freePort()
  const env = { REDIS_URL: `redis://app:${PASSWORD}@127.0.0.1:${port}/0`, REDIS_CONNECT_TIMEOUT_MS: '200' }
  // The API keeps retrying: stopped once it said it is ready anyway (the worker logs the same description).
  const [api, cli] = await Promise.all([run(ENTRIES.api, env, /checkout API ready/), run(ENTRIES.cli, env)])
  t.match(api!.out, /redis connection error/, 'the API logged the outage')
  t.match(api!.out, new RegExp(`"redis":"redis://127\\.0\\.0\\.1:${port}/0"`), 'the API says where Redis is')
  t.match(cli!.out, new RegExp(`Redis at redis://127\\.0\\.0\\.1:${port}/0 is unavailable`), 'the CLI names where it tried')
  t.match(cli!.out, /"code":"REDIS_UNAVAILABLE"/)
  for (const [entry, r] of [['api', api], ['cli', cli]] as const) {
    t.notMatch(r!.out, PASSWORD, `${entry}: no password`)
  }
})
