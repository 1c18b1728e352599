--[[
  Acknowledges handler runs that succeeded, any number of one shard in one
  call: removes each job and records the outcome `handled` on its order, if
  the order is still on that generation. Only the current claim may do so:
  the job must still be held by this worker under this attempt (the fencing
  token). The worker sends the acks of one shard's runs that finish together in one call.

  KEYS[1] job queue   <base>jobs
  KEYS[2] held jobs   <base>held:<token>

  ARGV[1] base (`<prefix>{<tag>}:`)
  ARGV[2] worker token
  then 2 entries per run: job member (`<generation>:<id>`, which names the
  order and its generation), attempt of the run being acknowledged

  Returns one code per run, in order:
    1  acknowledged
    2  already acknowledged by this very claim (the same ack sent again after a lost reply)
    0  CLAIM_LOST: the claim was taken over; another run owns the outcome
]]
-- @include now.lua
-- @include order-record.lua
local base, token = ARGV[1], ARGV[2]
local now = nowMs()
local out, done, jobKeys = {}, {}, {}

for i = 3, #ARGV, 2 do
  local member, attempt = ARGV[i], ARGV[i + 1]
  local colon = string.find(member, ':', 1, true)
  local gen, id = string.sub(member, 1, colon - 1), string.sub(member, colon + 1)
  local jobKey = base .. 'job:' .. member
  local orderKey = base .. 'order:' .. id
  local fence = token .. ':' .. attempt
  local job = redis.call('HMGET', jobKey, 'l', 'a')
  local code = 0
  if not job[2] then
    -- The job is gone: acknowledged, by this claim or by another worker's run.
    local order = orderGet(orderKey, 'g', 'hf')
    if order[1] == gen and order[2] == fence then code = 2 end
  elseif job[1] == token and job[2] == attempt then
    code = 1
    done[#done + 1] = member
    jobKeys[#jobKeys + 1] = jobKey
    if orderGet(orderKey, 'g')[1] == gen then
      orderUpdate(orderKey, 'h', 'handled', 'ha', now, 'a', attempt, 'hf', fence)
    end
  end
  out[#out + 1] = code
end

if #done > 0 then
  redis.call('DEL', unpack(jobKeys))
  redis.call('ZREM', KEYS[1], unpack(done))
  redis.call('SREM', KEYS[2], unpack(done))
end
return out
