import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { main } from '../src/cli/args.js'
import { closeRedis } from '../src/redis/connection.js'
import { toResponse } from '../src/routes/checkout.js'
import { createHold, getCheckout } from '../src/store/checkout-store.js'
import type { StoreContext } from '../src/store/context.js'
import { countDeadLetters, findDeadLetters } from '../src/store/dead-letters.js'
import { failJob } from '../src/store/expiry-jobs.js'
import { checkLayout } from '../src/store/layout.js'
import { recordFound } from '../src/store/stats.js'
import { testConfig } from './helpers/app.js'
import { childEnv, entryArgs } from './helpers/processes.js'
import { freePort, startRedis } from './helpers/redis.js'
import { testStore } from './helpers/worker.js'
import { claimAsOwner } from './helpers/own.js'

/** checkoutctl end to end against a real Redis: command lines through main(), a few as the spawned bin. */
const root = fileURLToPath(new URL('../', import.meta.url))
const redis = await startRedis()
t.teardown(redis.stop)
const config = testConfig(redis.url, { KEY_SHARDS: '4' })
const store = testStore(config)
t.teardown(() => closeRedis(store.redis))
await checkLayout(store.redis, store.keys, { warn: () => {} })
const env = { REDIS_URL: redis.url, KEY_PREFIX: config.KEY_PREFIX, KEY_SHARDS: '4' }

interface Run { code: number | null, stdout: string, stderr: string }

/**
 * Runs a command line: in-process through the same main() the bin calls, or
 * (spawn: true, for a few) as the real process an operator starts.
 */
async function ctl (args: string[], extraEnv: Record<string, string> = {}, spawned = false): Promise<Run> {
  if (!spawned) {
    let stdout = ''
    let stderr = ''
    const code = await main(args, { ...env, ...extraEnv }, { out: (s) => { stdout += s }, err: (s) => { stderr += s } })
    return { code, stdout, stderr }
  }
  const proc = spawn(process.execPath, [...entryArgs('bin/checkoutctl.ts'), ...args], {
    cwd: root, env: childEnv({ ...env, ...extraEnv }), stdio: ['ignore', 'pipe', 'pipe']
  })
  let stdout = ''
  let stderr = ''
  proc.stdout.on('data', (d: Buffer) => { stdout += d.toString() })
  proc.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
  const timer = setTimeout(() => proc.kill('SIGKILL'), 30_000)
  const code = await new Promise<number | null>((resolve) => proc.once('exit', (c) => resolve(c)))
  clearTimeout(timer)
  return { code, stdout, stderr }
}

const sleep = async (ms: number) => await new Promise((resolve) => setTimeout(resolve, ms))
const lease = { token: 'cli-worker', runningMs: 10_000, maxAttempts: 1 }
let seq = 0

/** Holds that expire and fail their only attempt: one dead letter each. */
async function deadLetters (s: StoreContext, ids: string[]): Promise<void> {
  for (const id of ids) await createHold(s, { id, ttlMs: 1000, payload: { id } })
  await sleep(1050)
  for (let shard = 0; shard < s.keys.shards; shard++) {
    for (const job of (await claimAsOwner(s, shard, 1000, lease, ++seq)).jobs) await failJob(s, job, lease.token, `failed ${job.id}`, 1, 0)
  }
}

t.test('get prints the hold as the API shows it, as JSON and as a table; an unknown id exits 1', async (t) => {
  await createHold(store, { id: 'get-1', ttlMs: 600_000, payload: { sku: 'A' } })
  const json = await ctl(['get', 'get-1', '--json'], {}, true)
  t.equal(json.code, 0, json.stderr)
  const shown = JSON.parse(json.stdout) as Record<string, unknown>
  const api = toResponse(await getCheckout(store, 'get-1'))
  t.same({ ...shown, ttl: undefined, ttlMs: undefined }, { ...api, ttl: undefined, ttlMs: undefined }, 'the API body')
  t.ok(Number(shown.ttlMs) > 590_000)

  const table = await ctl(['get', 'get-1'])
  t.equal(table.code, 0)
  t.match(table.stdout, /^id +get-1$/m)
  t.match(table.stdout, /^status +pending$/m)
  t.match(table.stdout, /^payload +\{"sku":"A"\}$/m)

  const missing = await ctl(['get', 'nope', '--json'])
  t.equal(missing.code, 1)
  t.match(missing.stderr, 'No checkout hold for order nope')
  t.same(JSON.parse(missing.stdout), { error: { code: 'NOT_FOUND', message: 'No checkout hold for order nope' } })
})

t.test('list pages through pending holds and dead letters, with --json and as a table', async (t) => {
  const pending = ['lp-1', 'lp-2', 'lp-3', 'lp-4', 'lp-5']
  for (const id of pending) await createHold(store, { id, ttlMs: 600_000 })
  const seen: string[] = []
  let cursor: string | null = '0'
  for (let pages = 0; cursor !== null && pages < 10; pages++) {
    const run = await ctl(['list', '--status', 'pending', '--limit', '3', '--cursor', cursor, '--json'])
    t.equal(run.code, 0, run.stderr)
    const page = JSON.parse(run.stdout) as { items: Array<{ id: string }>, next: string | null }
    t.ok(page.items.length <= 3)
    seen.push(...page.items.map((h) => h.id))
    cursor = page.next
  }
  t.same(seen.sort(), ['get-1', ...pending].sort(), 'every pending hold once, across shards')

  const table = await ctl(['list', '--status', 'pending', '--limit', '2'])
  t.equal(table.code, 0)
  const lines = table.stdout.split('\n')
  t.match(lines[0], /^SHARD +ID +EXPIRES AT +REMAINING MS$/)
  t.equal(lines[1]!.search(/(lp|get)-\d/), lines[0]!.indexOf('ID'), 'ids start under ID')
  t.match(table.stdout, /\nnext cursor: \d+(:\d+:\S+)?\n$/)

  await deadLetters(store, ['ld-1', 'ld-2'])
  const dead = await ctl(['list', '--status', 'dead', '--json'])
  t.equal(dead.code, 0, dead.stderr)
  const page = JSON.parse(dead.stdout) as { status: string, items: Array<Record<string, unknown>>, next: string | null }
  t.match(page, { status: 'dead', next: null })
  t.same(page.items.map((d) => d.id).sort(), ['ld-1', 'ld-2'])
  t.match(page.items[0], { generation: Number, attempts: 1, lastError: /^failed ld-/, payload: { id: /^ld-/ } })
  const deadTable = await ctl(['list', '--status', 'dead'])
  t.match(deadTable.stdout, /^SHARD +ID +GENERATION +DIED AT +ATTEMPTS +LAST ERROR$/m)
  t.match(deadTable.stdout, /ld-1 .* failed ld-1$/m)
  t.match(deadTable.stdout, /\nno more pages\n$/)
})

t.test('replay <id> and replay --all-dead send dead letters back as due jobs; the dead sets empty', async (t) => {
  // More than one page of replays (100).
  const bulk = Array.from({ length: 120 }, (_v, i) => `bulk-${i}`)
  await deadLetters(store, ['rp-1', 'rp-2', 'rp-3', ...bulk])
  const before = await countDeadLetters(store)
  t.ok(before >= 3)
  const { shard, members: [member] } = await findDeadLetters(store, 'rp-1')
  const one = await ctl(['replay', 'rp-1', '--json'])
  t.equal(one.code, 0, one.stderr)
  t.same(JSON.parse(one.stdout), { id: 'rp-1', shard, replayed: 1, members: [member] })
  t.equal(await countDeadLetters(store), before - 1)
  const again = await ctl(['replay', 'rp-1'])
  t.equal(again.code, 1, 'nothing left to replay for rp-1')
  t.match(again.stderr, 'No dead letter for order rp-1')

  const all = await ctl(['replay', '--all-dead', '--json'], {}, true)
  t.equal(all.code, 0, all.stderr)
  t.same(JSON.parse(all.stdout), { replayed: before - 1, skipped: 0 })
  t.equal(await countDeadLetters(store), 0, 'every dead set is empty')
  const now = Date.now()
  const handedOut: Array<{ id: string, attempt: number }> = []
  for (let s = 0; s < store.keys.shards; s++) {
    const due = await store.redis.zrangebyscore(store.keys.shard(s).jobs, '-inf', now + 1000)
    t.equal(due.length, (await store.redis.zcard(store.keys.shard(s).jobs)), `shard ${s}: every job is due now`)
    handedOut.push(...(await claimAsOwner(store, s, 1000, { ...lease, maxAttempts: 5 }, ++seq)).jobs)
  }
  t.same(handedOut.map((j) => j.id).sort(), ['ld-1', 'ld-2', 'rp-1', 'rp-2', 'rp-3', ...bulk].sort(),
    'each replayed letter is handed to a worker once more')
  t.ok(handedOut.every((j) => j.attempt === 2), 'as its next attempt')
})

t.test('purge --dead --older-than removes only old dead letters; without an age it needs --yes', async (t) => {
  await deadLetters(store, ['old-1', 'old-2'])
  await sleep(4000)
  await deadLetters(store, ['young-1'])
  const purge = await ctl(['purge', '--dead', '--older-than', '3s', '--json'])
  t.equal(purge.code, 0, purge.stderr)
  t.match(JSON.parse(purge.stdout), { purged: 2, olderThanMs: 3000, cutoff: String })
  t.same((await findDeadLetters(store, 'old-1')).members, [])
  t.equal((await findDeadLetters(store, 'young-1')).members.length, 1, 'the young one stays')

  const refused = await ctl(['purge', '--dead'])
  t.equal(refused.code, 2, 'everything, with no age limit, is not purged without --yes')
  t.match(refused.stderr, /add --yes/)
  t.match(refused.stderr, /Usage: checkoutctl/)
  t.equal(await countDeadLetters(store), 1)
  const everything = await ctl(['purge', '--dead', '--yes'])
  t.equal(everything.code, 0, everything.stderr)
  t.match(everything.stdout, /^purged +1$/m)
  t.equal(await countDeadLetters(store), 0)
})

t.test('stats prints pending holds, dead letters and the event/sweep share', async (t) => {
  await recordFound(store, { event: 3, sweep: 1 })
  const run = await ctl(['stats', '--json'])
  t.equal(run.code, 0, run.stderr)
  const stats = JSON.parse(run.stdout) as { pending: number, deadLetters: number, found: Record<string, unknown> }
  t.equal(stats.pending, 6, 'get-1 and lp-1..5')
  t.equal(stats.deadLetters, 0)
  t.same(stats.found, { event: 3, sweep: 1, eventShare: 0.75, sweepShare: 0.25 })
  const table = await ctl(['stats'])
  t.match(table.stdout, /^pending holds +6$/m)
  t.match(table.stdout, /^found by event +3 \(75\.0%\)$/m)
})

t.test('usage errors exit 2 with the usage text', async (t) => {
  for (const args of [[], ['list', '--status', 'gone'], ['list', '--status', 'dead', '--limit', '0'], ['frob'],
    ['get', 'a', '--status', 'dead'], ['purge', '--dead', '--older-than', '7 days']]) {
    const run = await ctl(args, {}, args.length === 0)
    t.equal(run.code, 2, `checkoutctl ${args.join(' ')}`)
    t.match(run.stderr, /Usage: checkoutctl <command>/)
    t.equal(run.stdout, '')
  }
  const json = await ctl(['list', '--cursor', '99:1:x', '--status', 'dead', '--json'])
  t.equal(json.code, 2, 'a cursor beyond KEY_SHARDS')
  t.match(JSON.parse(json.stdout), { error: { code: 'USAGE', message: /invalid cursor/ } })
  const help = await ctl(['--help'])
  t.equal(help.code, 0)
  t.match(help.stdout, /Usage: checkoutctl/)
})

t.test('Redis down or a layout mismatch exits 1 and says so', async (t) => {
  const port = await freePort()
  const down = await ctl(['stats', '--json'], { REDIS_URL: `redis://127.0.0.1:${port}/0` }, true)
  t.equal(down.code, 1)
  t.match(down.stderr, `Redis at redis://127.0.0.1:${port}/0 is unavailable: connect ECONNREFUSED`)
  t.match(JSON.parse(down.stdout), { error: { code: 'REDIS_UNAVAILABLE' } })
  const mismatch = await ctl(['replay', '--all-dead'], { KEY_SHARDS: '8' })
  t.equal(mismatch.code, 1)
  t.match(mismatch.stderr, 'KEY_SHARDS=8, but the data')
})
