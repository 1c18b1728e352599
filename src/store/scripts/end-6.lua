--[[
  Ends a pending hold by completion or cancellation. Decides atomically
  against the expiry: a hold past its deadline is expired here instead, so
  exactly one of "completed"/"cancelled" and "expired" ever happens.

  KEYS[1] order hash
  KEYS[2] timer key
  KEYS[3] deadline index
  KEYS[4] job queue
  KEYS[5] event outbox       <base>outbox (written only when ARGV[5] > 0)
  KEYS[6] idempotency record <base>idem:<id>:<key hash> (`<base>idem:` when the request has no key)

  ARGV[1] base
  ARGV[2] order id
  ARGV[3] new status: 'completed' or 'cancelled'
  ARGV[4] result retention in ms
  ARGV[5] outbox cap: 0 when events are off, else the approximate MAXLEN of the outbox
  ARGV[6] request fingerprint, '' when the request has no Idempotency-Key
  ARGV[7] idempotency record ttl in ms

  With events on, a hold ended here appends a `completed` or `cancelled`
  event to the outbox, and a hold found past its deadline an `expired`
  event; a retry of an ended hold, a refusal or a replayed request appends
  nothing.

  Returns
   { 1, endedAt, generation }     ended with ARGV[3] now
   { 1, endedAt, generation, 1 }  ended with ARGV[3] by an earlier call: a retry, not a conflict; nothing changed
   { -2 }                      CHECKOUT_NOT_FOUND
   { -3, status }              CHECKOUT_NOT_PENDING (status: expired, or the other of completed/cancelled)
   { 'replay', json }          the same Idempotency-Key and request again: the first reply, as JSON
   { 'conflict' }              IDEMPOTENCY_KEY_REUSED: the same key with another request
]]
-- @include pending-hold.lua
-- @include idempotency.lua
-- @include outbox.lua

local function act()
  local base, id = ARGV[1], ARGV[2]
  local now = nowMs()
  local ended = orderGet(KEYS[1], 's', 't', 'g')
  if ended[1] == ARGV[3] then return { 1, tonumber(ended[2]), tonumber(ended[3]), 1 } end
  local cur, refusal = pendingHold(KEYS[1], base, id, now, ARGV[4], KEYS[5], tonumber(ARGV[5]))
  if not cur then return refusal end

  redis.call('HSET', KEYS[1], 's', ARGV[3], 't', now)
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
  redis.call('DEL', KEYS[2])
  redis.call('ZREM', KEYS[3], id)
  recordEvent(KEYS[5], tonumber(ARGV[5]), { 't', ARGV[3], 'i', id, 'g', cur[3], 'at', now })
  return { 1, now, tonumber(cur[3]) }
end

return idempotent(KEYS[6], ARGV[6], ARGV[7], act)
