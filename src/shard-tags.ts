/**
 * Hash tags that spread shards evenly over a Redis Cluster. A tag `{n}` lands
 * on the slot CRC16("n") mod 16384, which is as good as random: the 16 tags
 * `{0}`..`{15}` fall 6/6/4 on three masters. Key format 2 instead gives shard
 * n of S a tag whose slot lies in the middle of the n-th of S equal slices of
 * the slot space, so the shards sit in slot order at even spacing, and
 * masters that serve equal contiguous slot ranges (what
 * `redis-cli --cluster create` and rebalancing produce) get S / masters each
 * when S is a multiple of the number of masters. See docs/keys.md.
 */
export const CLUSTER_SLOTS = 16384

/** CRC16-CCITT (XMODEM), the checksum Redis Cluster hashes keys with. */
export function crc16 (text: string): number {
  let crc = 0
  for (const byte of Buffer.from(text, 'utf8')) {
    crc ^= byte << 8
    for (let i = 0; i < 8; i++) crc = (crc & 0x8000) !== 0 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff
  }
  return crc
}

/** The cluster slot of a key, honouring the first non-empty `{…}` hash tag as Redis does. */
export function keySlot (key: string): number {
  const open = key.indexOf('{')
  if (open >= 0) {
    const close = key.indexOf('}', open + 1)
    if (close > open + 1) return crc16(key.slice(open + 1, close)) % CLUSTER_SLOTS
  }
  return crc16(key) % CLUSTER_SLOTS
}

/** The slots shard n of `shards` may land on: the middle half of its slice (at least one slot). */
export function targetSlots (shard: number, shards: number): [number, number] {
  const start = Math.floor((shard * CLUSTER_SLOTS) / shards)
  const end = Math.floor(((shard + 1) * CLUSTER_SLOTS) / shards)
  const quarter = Math.floor((end - start) / 4)
  return [start + quarter, Math.max(start + quarter + 1, end - quarter)]
}

/**
 * The tag of shard n: `<n>.<k>` with the smallest k whose slot is in
 * targetSlots. Deterministic, so every process and release derives the
 * same tags; never change it for format 2 (write a new format instead).
 * About 2 × shards candidates per shard are tried (KEY_SHARDS ≤ 1024: well
 * under a second in all, once per process).
 */
export function balancedTag (shard: number, shards: number): string {
  const [from, to] = targetSlots(shard, shards)
  for (let k = 0; ; k++) {
    const tag = `${shard}.${k}`
    const slot = crc16(tag) % CLUSTER_SLOTS
    if (slot >= from && slot < to) return tag
  }
}
