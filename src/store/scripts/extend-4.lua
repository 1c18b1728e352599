--[[
  Moves the deadline of a pending hold to now + ttl: the timer key and the
  deadline index together.

  KEYS[1] order hash
  KEYS[2] timer key
  KEYS[3] deadline index
  KEYS[4] job queue

  ARGV[1] base
  ARGV[2] order id
  ARGV[3] new ttl in ms
  ARGV[4] result retention in ms

  Returns
   { 1, now, deadline, generation, createdAt }  moved
   { -2 }                CHECKOUT_NOT_FOUND
   { -3, status }        CHECKOUT_NOT_PENDING
]]
-- @include pending-hold.lua

local base, id, ttl = ARGV[1], ARGV[2], tonumber(ARGV[3])
local now = nowMs()
local cur, refusal = pendingHold(KEYS[1], base, id, now, ARGV[4])
if not cur then return refusal end

local deadline = now + ttl
redis.call('HSET', KEYS[1], 'd', deadline)
redis.call('SET', KEYS[2], cur[3], 'PX', ttl)
redis.call('ZADD', KEYS[3], deadline, id)
return { 1, now, deadline, tonumber(cur[3]), tonumber(cur[5]) }
