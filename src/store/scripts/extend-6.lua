--[[
  Moves the deadline of a pending hold to now + ttl: the timer key and the
  deadline index together.

  KEYS[1] order hash
  KEYS[2] timer key
  KEYS[3] deadline index
  KEYS[4] job queue
  KEYS[5] event outbox       <base>outbox (written only when ARGV[5] > 0)
  KEYS[6] idempotency record <base>idem:<id>:<key hash> (`<base>idem:` when the request has no key)

  ARGV[1] base
  ARGV[2] order id
  ARGV[3] new ttl in ms
  ARGV[4] result retention in ms
  ARGV[5] outbox cap: 0 when events are off, else the approximate MAXLEN of the outbox
  ARGV[6] request fingerprint, '' when the request has no Idempotency-Key
  ARGV[7] idempotency record ttl in ms

  A deadline that is now the shard's earliest is published on
  `<prefix>due` (wake.lua).

  With events on, a moved deadline appends an `extended` event to the
  outbox, and a hold found past its deadline an `expired` event; a refusal
  or a replayed request appends nothing.

  Returns
   { 1, now, deadline, generation, createdAt }  moved
   { -2 }                CHECKOUT_NOT_FOUND
   { -3, status }        CHECKOUT_NOT_PENDING
   { 'replay', json }    the same Idempotency-Key and request again: the first reply, as JSON
   { 'conflict' }        IDEMPOTENCY_KEY_REUSED: the same key with another request
]]
-- @include pending-hold.lua
-- @include idempotency.lua
-- @include outbox.lua
-- @include wake.lua
-- @include timer.lua

local function act()
  local base, id, ttl = ARGV[1], ARGV[2], tonumber(ARGV[3])
  local now = nowMs()
  local cur, refusal = pendingHold(KEYS[1], base, id, now, ARGV[4], KEYS[5], tonumber(ARGV[5]))
  if not cur then return refusal end

  local deadline = now + ttl
  redis.call('HSET', KEYS[1], 'd', deadline)
  setTimer(KEYS[2], cur[3], ttl)
  redis.call('ZADD', KEYS[3], deadline, id)
  wakeIfFirst(KEYS[3], id, deadline, base)
  recordEvent(KEYS[5], tonumber(ARGV[5]), { 't', 'extended', 'i', id, 'g', cur[3], 'at', now, 'd', deadline, 'ttl', ttl })
  return { 1, now, deadline, tonumber(cur[3]), tonumber(cur[5]) }
end

return idempotent(KEYS[6], ARGV[6], ARGV[7], act)
