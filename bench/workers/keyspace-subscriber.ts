import { Redis } from 'ioredis'
import { recordFile, runHandler } from '../record.js'

/**
 * A subscriber of the original design: one process per worker, listening on
 * `__keyevent@0__:expired` and running the handler for each key of ours.
 * Like checkout-expiry's worker it (re)enables expired events on every
 * (re)connect and reconnects with the same backoff.
 */
const url = process.env.BENCH_REDIS_URL ?? ''
const prefix = process.env.BENCH_KEY_PREFIX ?? ''
const file = recordFile()
const retryStrategy = (times: number) => Math.min(50 * 2 ** Math.min(times, 6), 2000)

const command = new Redis(url, { connectionName: 'bench:keyspace-command', protocol: 2, maxRetriesPerRequest: null, retryStrategy })
const subscriber = new Redis(url, { connectionName: 'bench:keyspace-subscriber', protocol: 2, maxRetriesPerRequest: null, autoResubscribe: true, retryStrategy })
command.on('error', () => {})
subscriber.on('error', () => {})

const enableEvents = async () => { await command.config('SET', 'notify-keyspace-events', 'Ex') }
command.on('ready', () => { void enableEvents().catch(() => {}) })

subscriber.on('pmessage', (_pattern: string, _channel: string, key: string) => {
  if (!key.startsWith(prefix)) return
  const now = Date.now()
  void runHandler(file, { id: key.slice(prefix.length), attempt: 1, now, pid: process.pid })
})

await enableEvents()
await subscriber.psubscribe('__keyevent@0__:expired')
process.stdout.write('ready\n')

const shutdown = () => {
  subscriber.disconnect()
  command.disconnect()
}
process.once('SIGTERM', shutdown)
process.once('SIGINT', shutdown)
