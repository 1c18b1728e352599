// A webhook receiver for the `webhook` expiry handler, on node:http alone.
//   WEBHOOK_SECRET=<secret> PORT=8080 node examples/webhook-receiver/node/server.mjs
// WEBHOOK_SECRET may hold two secrets, `old,new`, while you rotate them (README,
// "Rotating WEBHOOK_SECRET"): a request signed with either is accepted.
//
// verifyWebhookSignature comes from the package (`npm install checkout-expiry`;
// inside this repository, after `npm run build`). It depends on node:crypto only:
// you may copy src/webhook-signature.ts into your project instead.
import { createServer } from 'node:http'
import { verifyWebhookSignature } from 'checkout-expiry/webhook-signature'

const secrets = process.env.WEBHOOK_SECRET ?? ''
if (secrets === '') throw new Error('set WEBHOOK_SECRET (two, comma-separated, during a rotation)')
const MAX_BODY_BYTES = 64 * 1024 // an expiry event is far smaller; refuse anything bigger unread

// Stands in for your database: record the key where the effect lands, in the same transaction.
const handled = new Set()

/** The body exactly as received: the signature covers these bytes, not a re-serialised JSON. */
async function rawBody (req) {
  const chunks = []
  let size = 0
  for await (const chunk of req) {
    size += chunk.length
    if (size > MAX_BODY_BYTES) return undefined
    chunks.push(chunk)
  }
  return Buffer.concat(chunks)
}

const server = createServer(async (req, res) => {
  if (req.method !== 'POST' || req.url !== '/expired') return res.writeHead(404).end()
  const body = await rawBody(req)
  if (body === undefined) return res.writeHead(413, { connection: 'close' }).end()
  if (!verifyWebhookSignature(body, req.headers['checkout-signature'], secrets)) {
    return res.writeHead(400).end('bad signature')
  }
  const event = JSON.parse(body.toString('utf8'))
  // The same expiry comes again after a retry or a replay: act once per idempotencyKey.
  if (!handled.has(event.idempotencyKey)) {
    handled.add(event.idempotencyKey)
    process.stdout.write(`expired ${event.id} generation ${event.generation} (key ${event.idempotencyKey})\n`)
  }
  res.writeHead(204).end()
})

server.listen(Number(process.env.PORT ?? 8080), '127.0.0.1', () => {
  process.stdout.write(`listening on http://127.0.0.1:${server.address().port}/expired\n`)
})
for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, () => server.close())
