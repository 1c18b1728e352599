// Reads the lifecycle events (docs/events.md) from <KEY_PREFIX>events with a consumer group.
//   REDIS_URL=redis://127.0.0.1:6379 KEY_PREFIX=ce: GROUP=billing CONSUMER=billing-1 node examples/stream-consumer/consumer.mjs
// Run the API and the worker with EVENT_STREAM=true (and `stream` in EXPIRY_HANDLERS for `expired`).
// Prints one line per event; Ctrl-C or SIGTERM stops it after the current batch.
import { Redis } from 'ioredis'

const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379')
const stream = `${process.env.KEY_PREFIX ?? 'ce:'}events`
const group = process.env.GROUP ?? 'billing'
const consumer = process.env.CONSUMER ?? `${group}-1`
const SEEN_TTL_SECONDS = 7 * 24 * 3600

let stopping = false
for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, () => { stopping = true })

// A new group starts at the oldest event the stream keeps (0); `$` would start at events written from now on.
try {
  await redis.xgroup('CREATE', stream, group, '0', 'MKSTREAM')
} catch (err) {
  if (!String(err.message).startsWith('BUSYGROUP')) throw err // the group exists: carry on where it stopped
}
process.stdout.write(`consuming ${stream} as ${group}/${consumer}\n`)

/** Your effect goes here. Delivery is at least once: drop an eventId already handled. */
async function handle (event) {
  const seen = `${group}:seen:${event.eventId}`
  if (await redis.exists(seen)) return
  process.stdout.write(`${event.type} ${event.orderId} generation ${event.generation} (${event.eventId})\n`)
  // Recorded after the effect: a crash in between repeats the event rather than losing it.
  await redis.set(seen, '1', 'EX', SEEN_TTL_SECONDS)
}

// First the entries this consumer read before a restart and never acknowledged (id 0), then new ones (>).
let from = '0'
while (!stopping) {
  const reply = await redis.xreadgroup('GROUP', group, consumer, 'COUNT', 100, 'BLOCK', 1000, 'STREAMS', stream, from)
  const entries = reply?.[0]?.[1] ?? []
  if (from === '0' && entries.length === 0) from = '>'
  for (const [id, fields] of entries) {
    const data = fields[fields.indexOf('data') + 1]
    await handle(JSON.parse(data))
    await redis.xack(stream, group, id)
  }
}
await redis.quit()
