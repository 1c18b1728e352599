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
-- @include expire-order.lua

local base, id, ttl = ARGV[1], ARGV[2], tonumber(ARGV[3])
local now = nowMs()
local cur = redis.call('HMGET', KEYS[1], 's', 'd', 'g', 'p', 'c')
if not cur[1] then return { -2 } end
if cur[1] ~= 'pending' then return { -3, cur[1] } end

local deadline = tonumber(cur[2])
if deadline <= now then
  expireOrder(base, id, cur[3], deadline, cur[4], now, ARGV[4])
  return { -3, 'expired' }
end

deadline = now + ttl
redis.call('HSET', KEYS[1], 'd', deadline)
redis.call('SET', KEYS[2], cur[3], 'PX', ttl)
redis.call('ZADD', KEYS[3], deadline, id)
return { 1, now, deadline, tonumber(cur[3]), tonumber(cur[5]) }
