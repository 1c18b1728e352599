--[[
  Creates a hold: a new generation of the order, its timer key and its entry
  in the shard's deadline index, atomically.

  The generation is the hold's identity. It comes from the shard's counter,
  which never expires, so it is never reused: not when the order hash of an
  earlier hold is gone after its retention, and never for an id whose old
  expiry job still exists (retrying or dead-lettered). The job key is
  therefore unique for ever under the prefix, and the idempotency key
  `<id>:<epoch>:<generation>` (the epoch recorded with the layout) across
  prefixes and Redis instances too.

  KEYS[1] order hash        <base>order:<id>
  KEYS[2] timer key         <base>timer:<id>
  KEYS[3] deadline index    <base>deadlines
  KEYS[4] job queue         <base>jobs        (written when a lapsed hold is expired first)
  KEYS[5] hold counter      <base>holds       (last generation issued in this shard)
  KEYS[6] event outbox      <base>outbox      (written only when ARGV[6] > 0)
  KEYS[7] idempotency record <base>idem:<id>:<key hash> (`<base>idem:` when the request has no key)

  ARGV[1] base (`<prefix>{<shard>}:`)
  ARGV[2] order id
  ARGV[3] ttl in ms
  ARGV[4] payload JSON, '' for none
  ARGV[5] result retention in ms
  ARGV[6] outbox cap: 0 when events are off, else the approximate MAXLEN of the outbox
  ARGV[7] request fingerprint, '' when the request has no Idempotency-Key
  ARGV[8] idempotency record ttl in ms

  A hold that is now the shard's earliest deadline is published on
  `<prefix>due` (wake.lua).

  With events on, a hold created here appends a `created` event to the
  outbox (after the `expired` event of the hold it replaces, when that one
  ran out unnoticed); a replayed or refused request appends nothing.

  Returns
   { 1, generation, createdAt, deadline }  created
   { -1, remainingMs }                     CHECKOUT_EXISTS: the id is held
   { 'replay', json, payload }             the same Idempotency-Key and request again: the first reply, as JSON,
                                           and the first request's payload JSON (nil when it had none)
   { 'conflict' }                          IDEMPOTENCY_KEY_REUSED: the same key with another request
]]
-- @include expire-order.lua
-- @include order-record.lua
-- @include idempotency.lua
-- @include new-hold.lua
-- @include wake.lua
-- @include timer.lua

local function act()
  local base, id, ttl = ARGV[1], ARGV[2], tonumber(ARGV[3])
  local now = nowMs()
  local cur = orderGet(KEYS[1], 's', 'd', 'g', 'p')
  local previous = tonumber(cur[3]) or 0

  if cur[1] == 'pending' then
    local deadline = tonumber(cur[2])
    if deadline > now then return { -1, deadline - now } end
    expireOrder(base, id, previous, deadline, cur[4], now, ARGV[5], KEYS[6], tonumber(ARGV[6]))
  end

  -- A second guard: a timer exists only while a hold is pending.
  if redis.call('EXISTS', KEYS[2]) == 1 then
    return { -1, math.max(0, redis.call('PTTL', KEYS[2]) - TIMER_GRACE_MS) }
  end

  local gen = newGeneration(KEYS[5], base, id, previous)

  local deadline = now + ttl
  setTimer(KEYS[2], gen, ttl)
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[1], 'g', gen, 's', 'pending', 'c', now, 'd', deadline)
  if ARGV[4] ~= '' then redis.call('HSET', KEYS[1], 'p', ARGV[4]) end
  redis.call('ZADD', KEYS[3], deadline, id)
  wakeIfFirst(KEYS[3], id, deadline, base)
  recordCreated(KEYS[6], tonumber(ARGV[6]), id, gen, now, deadline, ttl, ARGV[4])
  return { 1, gen, now, deadline }
end

return idempotent(KEYS[7], ARGV[7], ARGV[8], act, ARGV[4])
