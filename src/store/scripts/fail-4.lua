--[[
  Records a failed handler run: schedules a retry, or moves the job to the
  dead-letter set after its last attempt. The job hash keeps the last error.

  KEYS[1] job queue        <base>jobs
  KEYS[2] job hash         <base>job:<generation>:<id>
  KEYS[3] order hash       <base>order:<id>
  KEYS[4] dead-letter set  <base>dead

  ARGV[1] job member
  ARGV[2] lease token
  ARGV[3] generation
  ARGV[4] error message
  ARGV[5] max attempts
  ARGV[6] retry delay in ms

  Returns
    1  retry scheduled
    2  dead: moved to the dead-letter set
    0  LEASE_LOST
]]
-- @include now.lua
local now = nowMs()
if redis.call('HGET', KEYS[2], 'l') ~= ARGV[2] then return 0 end

local attempts = tonumber(redis.call('HGET', KEYS[2], 'a'))
redis.call('HSET', KEYS[2], 'e', ARGV[4], 'l', '')
local current = redis.call('HGET', KEYS[3], 'g') == ARGV[3]

if attempts >= tonumber(ARGV[5]) then
  redis.call('ZREM', KEYS[1], ARGV[1])
  redis.call('ZADD', KEYS[4], now, ARGV[1])
  redis.call('HSET', KEYS[2], 'f', now)
  if current then redis.call('HSET', KEYS[3], 'h', 'dead', 'e', ARGV[4], 'a', attempts) end
  return 2
end

redis.call('ZADD', KEYS[1], now + tonumber(ARGV[6]), ARGV[1])
if current then redis.call('HSET', KEYS[3], 'h', 'retrying', 'e', ARGV[4], 'a', attempts) end
return 1
