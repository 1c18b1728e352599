--[[
  Acknowledges a handler run that succeeded: removes the job and records the
  outcome `handled` on the order, if the order is still on that generation.
  Only the current claim may do so: the job must still be held by this
  worker under this attempt (the fencing token).

  KEYS[1] job queue   <base>jobs
  KEYS[2] job hash    <base>job:<generation>:<id>
  KEYS[3] order hash  <base>order:<id>
  KEYS[4] held jobs   <base>held:<token>

  ARGV[1] job member (`<generation>:<id>`)
  ARGV[2] worker token
  ARGV[3] attempt of the run being acknowledged
  ARGV[4] generation

  Returns
    1  acknowledged
    2  already acknowledged by this very claim (the same ack sent again after a lost reply)
    0  CLAIM_LOST: the claim was taken over; another run owns the outcome
]]
-- @include now.lua
local now = nowMs()
local fence = ARGV[2] .. ':' .. ARGV[3]
local job = redis.call('HMGET', KEYS[2], 'l', 'a')
if not job[2] then
  -- The job is gone: acknowledged, by this claim or by another worker's run.
  local order = redis.call('HMGET', KEYS[3], 'g', 'hf')
  if order[1] == ARGV[4] and order[2] == fence then return 2 end
  return 0
end
if job[1] ~= ARGV[2] or job[2] ~= ARGV[3] then return 0 end

redis.call('DEL', KEYS[2])
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('SREM', KEYS[4], ARGV[1])
if redis.call('HGET', KEYS[3], 'g') == ARGV[4] then
  redis.call('HSET', KEYS[3], 'h', 'handled', 'ha', now, 'a', ARGV[3], 'hf', fence)
end
return 1
