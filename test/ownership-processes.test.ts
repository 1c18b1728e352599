import t from 'tap'
import { shardOwner } from '../src/store/membership.js'
import { createHolds, expectExactlyOnce, scenario } from './helpers/fault.js'
import { readRecords, startWorker, type Child } from './helpers/processes.js'
import { until } from './helpers/worker.js'

/**
 * Shard ownership among real worker processes (docs/delivery.md, "Shard
 * ownership"), under a random schedule of joins, leaves (SIGTERM), SIGKILLs
 * and 2 s stalls (SIGSTOP, SIGCONT) of 3 to 5 workers, with the default
 * lease and heartbeat. After each step every shard is owned by exactly one
 * live worker and every live worker owns some; a stalled worker keeps its
 * shards; and the holds that expire meanwhile run exactly once (a run by a
 * SIGKILLed worker may be repeated: its outcome never reached Redis).
 */
interface Worker { child: Child, token: string }

const tokenOf = (child: Child): string => {
  const line = child.output().split('\n').find((l) => l.includes('expiry worker ready'))
  return (JSON.parse(line as string) as { token: string }).token
}

/** A small seeded generator, so a failing schedule can be replayed (SCHEDULE_SEED). */
function random (seed: number): () => number {
  let x = seed >>> 0 || 1
  return () => {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    return (x >>> 0) / 2 ** 32
  }
}

type Step = 'join' | 'leave' | 'kill' | 'stall'

t.test('a random schedule of joins, leaves, kills and stalls: each shard one live owner, each expiry once', async (t) => {
  const seed = Number(process.env.SCHEDULE_SEED ?? Date.now() % 100_000)
  t.comment(`SCHEDULE_SEED=${seed}`)
  const next = random(seed)
  const s = await scenario(t, { env: { RECORD_SLEEP_MS: '50', SHUTDOWN_TIMEOUT_MS: '5000' } })
  const shards = s.config.KEY_SHARDS
  const live: Worker[] = (await s.startWorkers(3)).map((child) => ({ child, token: tokenOf(child) }))
  const killedPids = new Set<number>()

  const owners = async () => await Promise.all(Array.from({ length: shards }, async (_v, shard) => (await shardOwner(s.store, shard)).token))
  /** Every shard owned by a live worker, every live worker owning some. */
  const settled = async () => {
    const now = await owners()
    const tokens = new Set(live.map((w) => w.token))
    return now.every((o) => tokens.has(o)) && new Set(now).size === tokens.size
  }
  const check = async (step: string) => {
    const started = Date.now()
    const ok = await until(settled, 10_000, 50)
    t.ok(ok, `after ${step}: each shard owned by one of the ${live.length} live workers, each owning some (${Date.now() - started} ms)`)
    if (!ok) t.comment(`owners: ${(await owners()).join(' ')}; live: ${live.map((w) => w.token).join(' ')}`)
  }
  await check('start')

  // Each kind of step once, in a random order, then random ones: 6 steps in all.
  const kinds: Step[] = ['join', 'leave', 'kill', 'stall']
  const steps: Step[] = [...kinds].sort(() => next() - 0.5)
  while (steps.length < 6) steps.push(kinds[Math.floor(next() * kinds.length)] as Step)
  const ids: string[] = []
  let batch = 0
  for (const wanted of steps) {
    // Holds that fall due during the step and the next.
    ids.push(...await createHolds(s.store, 40, `own-${batch++}`, (i) => 1000 + (i % 40) * 75))
    const step: Step = wanted === 'join' && live.length >= 5 ? 'stall' : (wanted === 'leave' || wanted === 'kill') && live.length <= 3 ? 'join' : wanted
    const pick = live[Math.floor(next() * live.length)] as Worker
    if (step === 'join') {
      const child = await startWorker(s.env)
      s.workers.push(child)
      live.push({ child, token: tokenOf(child) })
    } else if (step === 'leave') {
      live.splice(live.indexOf(pick), 1)
      const { code } = await pick.child.signal('SIGTERM')
      t.equal(code, 0, 'the leaving worker exits cleanly')
    } else if (step === 'kill') {
      live.splice(live.indexOf(pick), 1)
      killedPids.add(pick.child.proc.pid as number)
      await pick.child.signal('SIGKILL')
    } else {
      const before = await owners()
      pick.child.proc.kill('SIGSTOP')
      await new Promise((resolve) => setTimeout(resolve, 2000))
      pick.child.proc.kill('SIGCONT')
      // Long enough for the others to have reaped it, had they judged it lapsed.
      await new Promise((resolve) => setTimeout(resolve, 1500))
      const after = await owners()
      const mine = (o: string[]) => o.flatMap((owner, shard) => owner === pick.token ? [shard] : [])
      t.same(mine(after), mine(before), `the worker stalled for 2 s keeps its ${mine(before).length} shards`)
      t.notOk(pick.child.output().includes('judged this worker lapsed'), 'and was not reaped')
    }
    await check(step)
  }

  const rerunAllowed = (id: string) => readRecords(s.record).some((r) => r.id === id && killedPids.has(r.pid))
  await expectExactlyOnce(t, s, ids, 30_000, rerunAllowed)
})
