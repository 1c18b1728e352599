import type { RedisClient } from './connection.js'

/**
 * WAIT for `replicas` replicas to acknowledge this connection's writes, on
 * the node that took them. WAIT has no key: a Cluster sends a keyless
 * command alone to a random node, but a pipeline goes to the node of its
 * keyed commands, over the same pooled connection the write used. So WAIT
 * rides in a pipeline behind an EXISTS of the key just written, on one node
 * and a cluster alike. Resolves with how many replicas acknowledged in
 * time; 0 when WAIT itself failed (the node was demoted meanwhile), since
 * then nothing is known to have reached a replica.
 */
export async function waitForReplicas (redis: RedisClient, key: string, replicas: number, timeoutMs: number): Promise<number> {
  const replies = await redis.pipeline().exists(key).wait(replicas, timeoutMs).exec()
  const [err, acknowledged] = replies?.[1] ?? [new Error('no reply')]
  if (err) return 0
  return Number(acknowledged)
}
