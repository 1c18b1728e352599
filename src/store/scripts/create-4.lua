--[[
  Creates a hold: a new generation of the order, its timer key and its entry
  in the shard's deadline index, atomically.

  KEYS[1] order hash        <base>order:<id>
  KEYS[2] timer key         <base>timer:<id>
  KEYS[3] deadline index    <base>deadlines
  KEYS[4] job queue         <base>jobs        (written when a lapsed hold is expired first)

  ARGV[1] base (`<prefix>{<shard>}:`)
  ARGV[2] order id
  ARGV[3] ttl in ms
  ARGV[4] payload JSON, '' for none
  ARGV[5] result retention in ms

  Returns
   { 1, generation, createdAt, deadline }  created
   { -1, remainingMs }                     CHECKOUT_EXISTS: the id is held
]]
-- @include expire-order.lua

local base, id, ttl = ARGV[1], ARGV[2], tonumber(ARGV[3])
local now = nowMs()
local cur = redis.call('HMGET', KEYS[1], 's', 'd', 'g', 'p')
local gen = tonumber(cur[3]) or 0

if cur[1] == 'pending' then
  local deadline = tonumber(cur[2])
  if deadline > now then return { -1, deadline - now } end
  expireOrder(base, id, gen, deadline, cur[4], now, ARGV[5])
end

-- The NX is a second guard: a timer exists only while a hold is pending.
if not redis.call('SET', KEYS[2], gen + 1, 'PX', ttl, 'NX') then
  return { -1, redis.call('PTTL', KEYS[2]) }
end

gen = gen + 1
local deadline = now + ttl
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'g', gen, 's', 'pending', 'c', now, 'd', deadline)
if ARGV[4] ~= '' then redis.call('HSET', KEYS[1], 'p', ARGV[4]) end
redis.call('ZADD', KEYS[3], deadline, id)
return { 1, gen, now, deadline }
