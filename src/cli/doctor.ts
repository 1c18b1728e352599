import { checkKeyspaceEvents, checkPubSub, checkServer } from '../redis/fitness.js'
import type { StoreContext } from '../store/context.js'
import type { Result } from './output.js'

const verdict = (ok: boolean | undefined) => ok === true ? 'ok' : ok === false ? 'NOT FIT' : 'not checked'

/** `doctor`: the fitness of the Redis the configuration points at (src/redis/fitness.ts), each check with its fix. */
export async function doctorCommand (store: StoreContext): Promise<Result> {
  const [server, events, pubsub] = await Promise.all([
    checkServer(store.redis), checkKeyspaceEvents(store.redis), checkPubSub(store.redis, store.keys.dueChannel)
  ])
  const findings = [...server, events, pubsub]
  const fit = findings.every((f) => f.ok !== false)
  return {
    // A check that failed exits 3 (docs/cli.md), so a deploy script can stop on it.
    exitCode: fit ? 0 : 3,
    json: { fit, findings },
    text: findings.map((f) => `${f.check.padEnd(17)} ${verdict(f.ok).padEnd(12)} ${f.detail}${f.fix ? `\n${' '.repeat(31)}fix: ${f.fix}` : ''}`).join('\n')
  }
}
