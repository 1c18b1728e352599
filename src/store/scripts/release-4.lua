--[[
  Gives claimed jobs back so another worker runs them at once, instead of
  waiting for this worker's heartbeat to lapse: jobs it claimed but never
  started and runs it interrupted because it is stopping (their attempt is
  given back: neither is the handler's doing), runs it abandoned because it
  could not prove its claim (the attempt counts, so a handler that stalls its
  worker every time still ends in the dead-letter set), and, when the worker
  stops, everything it still holds in the shard, after which it gives up
  the shard if it owns it (the epoch stays, own-3.lua): interrupted when it stops for a signal, abandoned (the
  attempts count) when it stops because a handler crashed it, so a handler
  that crashes its worker every time still ends in the dead-letter set.

  KEYS[1] job queue     <base>jobs
  KEYS[2] held jobs     <base>held:<token>
  KEYS[3] owner record  <base>owner:<format>
  KEYS[4] claim record  <base>claim:<token>

  ARGV[1] base
  ARGV[2] worker token
  ARGV[3] 1 to release everything held and give up the shard, 0 for the listed jobs only
  ARGV[4] with ARGV[3] = 1, how the rest held is released: 'interrupted' or 'abandoned'
  ARGV[5..] triples: member, attempt (fencing token with ARGV[2]), 'unstarted', 'interrupted' or 'abandoned'

  Released jobs are due at once; `<prefix>due` tells the workers (wake.lua).

  Returns the number of jobs released (jobs no longer held under that claim are skipped)
]]
-- @include now.lua
-- @include wake.lua
local now = nowMs()
local base, token = ARGV[1], ARGV[2]
local released = 0

local function release(member, jobKey, fields)
  redis.call('HSET', jobKey, 'l', '', unpack(fields))
  redis.call('ZADD', KEYS[1], now, member)
  redis.call('SREM', KEYS[2], member)
  released = released + 1
end

for i = 5, #ARGV, 3 do
  local member, attempt, how = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local jobKey = base .. 'job:' .. member
  local job = redis.call('HMGET', jobKey, 'l', 'a')
  if job[1] == token and job[2] == attempt then
    if how == 'unstarted' then
      release(member, jobKey, { 'a', tonumber(attempt) - 1 })
    elseif how == 'interrupted' then
      release(member, jobKey, { 'a', tonumber(attempt) - 1, 'e', 'the worker shut down during attempt ' .. attempt })
    else
      release(member, jobKey, { 'e', 'the worker abandoned attempt ' .. attempt })
    end
  end
end

if ARGV[3] == '1' then
  for _, member in ipairs(redis.call('SMEMBERS', KEYS[2])) do
    local jobKey = base .. 'job:' .. member
    local job = redis.call('HMGET', jobKey, 'l', 'a')
    if job[1] == token and ARGV[4] == 'abandoned' then
      release(member, jobKey, { 'e', 'the worker crashed during attempt ' .. job[2] })
    elseif job[1] == token then
      release(member, jobKey, { 'a', tonumber(job[2]) - 1, 'e', 'the worker shut down during attempt ' .. job[2] })
    end
  end
  redis.call('DEL', KEYS[2], KEYS[4])
  local record = redis.call('GET', KEYS[3])
  local colon = record and string.find(record, ':', 1, true)
  if colon and string.sub(record, colon + 1) == token then
    redis.call('SET', KEYS[3], string.sub(record, 1, colon))
  end
end
-- Due now: other workers take them at once.
if released > 0 then wake(base, now) end
return released
