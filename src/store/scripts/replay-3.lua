--[[
  Sends a dead-lettered job back to the queue, due now, with a fresh set of
  attempts (an operator fixed what made it fail). Its idempotency key is
  unchanged: the handler may already have done part of the work. Attempt
  numbers go on counting (they are part of each claim's fencing token, so
  they are never reused); `a0` marks where the fresh set starts.

  KEYS[1] dead-letter set  <base>dead
  KEYS[2] job queue        <base>jobs
  KEYS[3] job hash         <base>job:<generation>:<id>

  ARGV[1] base
  ARGV[2] job member (`<generation>:<id>`)

  The job is due at once; `<prefix>due` tells the workers (wake.lua).

  Returns
    1  queued again
    0  not in the dead-letter set
]]
-- @include now.lua
-- @include wake.lua
-- @include order-record.lua
local now = nowMs()
if redis.call('ZREM', KEYS[1], ARGV[2]) == 0 then return 0 end
redis.call('HSET', KEYS[3], 'a0', redis.call('HGET', KEYS[3], 'a'), 'l', '')
redis.call('HDEL', KEYS[3], 'f')
redis.call('ZADD', KEYS[2], now, ARGV[2])
wake(ARGV[1], now)
local job = redis.call('HMGET', KEYS[3], 'i', 'g')
local orderKey = ARGV[1] .. 'order:' .. job[1]
if orderGet(orderKey, 'g')[1] == job[2] then
  orderUpdate(orderKey, 'h', 'pending')
end
return 1
