--[[
  Ends a pending hold by completion or cancellation. Decides atomically
  against the expiry: a hold past its deadline is expired here instead, so
  exactly one of "completed"/"cancelled" and "expired" ever happens.

  KEYS[1] order hash
  KEYS[2] timer key
  KEYS[3] deadline index
  KEYS[4] job queue

  ARGV[1] base
  ARGV[2] order id
  ARGV[3] new status: 'completed' or 'cancelled'
  ARGV[4] result retention in ms

  Returns
   { 1, endedAt, generation }  ended with ARGV[3], now or by an earlier call (a retry is not a conflict)
   { -2 }                      CHECKOUT_NOT_FOUND
   { -3, status }              CHECKOUT_NOT_PENDING (status: expired, or the other of completed/cancelled)
]]
-- @include pending-hold.lua

local base, id = ARGV[1], ARGV[2]
local now = nowMs()
local ended = redis.call('HMGET', KEYS[1], 's', 't', 'g')
if ended[1] == ARGV[3] then return { 1, tonumber(ended[2]), tonumber(ended[3]) } end
local cur, refusal = pendingHold(KEYS[1], base, id, now, ARGV[4])
if not cur then return refusal end

redis.call('HSET', KEYS[1], 's', ARGV[3], 't', now)
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('DEL', KEYS[2])
redis.call('ZREM', KEYS[3], id)
return { 1, now, tonumber(cur[3]) }
