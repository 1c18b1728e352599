--[[
  Acknowledges a handler run that succeeded: removes the job and records the
  outcome `handled` on the order, if the order is still on that generation.

  KEYS[1] job queue   <base>jobs
  KEYS[2] job hash    <base>job:<generation>:<id>
  KEYS[3] order hash  <base>order:<id>

  ARGV[1] job member (`<generation>:<id>`)
  ARGV[2] lease token
  ARGV[3] generation

  Returns
    1  acknowledged
    2  already acknowledged (the same ack sent again after a lost reply)
    0  LEASE_LOST: the lease ran out and another worker took the job over
]]
-- @include now.lua
local now = nowMs()
local holder = redis.call('HGET', KEYS[2], 'l')
if not holder then return 2 end
if holder ~= ARGV[2] then return 0 end

local attempts = redis.call('HGET', KEYS[2], 'a')
redis.call('DEL', KEYS[2])
redis.call('ZREM', KEYS[1], ARGV[1])
if redis.call('HGET', KEYS[3], 'g') == ARGV[3] then
  redis.call('HSET', KEYS[3], 'h', 'handled', 'ha', now, 'a', attempts)
end
return 1
