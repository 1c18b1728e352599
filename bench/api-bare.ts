import Fastify from 'fastify'
import { Redis } from 'ioredis'

/**
 * The baseline of `npm run bench:api`: the least a checkout hold API can do
 * on Fastify + ioredis. POST /checkout is one `SET … NX PX`, GET is one
 * pipelined `GET` + `PTTL`. No validation beyond the JSON parser, no logging,
 * no auth, no metrics. Listens on $PORT, Redis at $REDIS_URL.
 */
const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', { enableAutoPipelining: true })
const app = Fastify({ logger: false })

app.post('/checkout', async (request, reply) => {
  const { id, ttlMs } = request.body as { id: string, ttlMs: number }
  const ok = await redis.set(`bare:${id}`, '1', 'PX', ttlMs, 'NX')
  if (ok !== 'OK') return await reply.code(409).send({ code: 'CHECKOUT_EXISTS' })
  return await reply.code(201).send({ id, status: 'pending', ttlMs })
})

app.get('/checkout/:id', async (request, reply) => {
  const { id } = request.params as { id: string }
  const [[, value], [, pttl]] = await redis.pipeline().get(`bare:${id}`).pttl(`bare:${id}`).exec() as [[null, string | null], [null, number]]
  if (value === null) return await reply.code(404).send({ code: 'CHECKOUT_NOT_FOUND' })
  return { id, status: 'pending', ttlMs: pttl }
})

await app.listen({ port: Number(process.env.PORT), host: '127.0.0.1' })
process.stdout.write('bare api ready\n')
process.once('SIGTERM', () => { void app.close().then(() => redis.quit()).then(() => process.exit(0)) })
