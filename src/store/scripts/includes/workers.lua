-- @include now.lua
-- @include wake.lua

-- The jobs of gone workers in one shard. A worker holds its jobs in a shard
-- in <base>held:<token>. Once it is gone (reaped or left, members.lua), the
-- owner of the shard puts its token in <base>reaping (own-3.lua), and the
-- jobs it still held there are released (due now, no holder), a bounded
-- number per call.

-- Jobs a single call releases at most: a reap never blocks Redis for long.
local REAP_BATCH = 100

-- Releases up to REAP_BATCH jobs of gone workers; a worker whose jobs are
-- all released leaves the reaping set. Wakes the workers (`<prefix>due`)
-- when it released any. Returns the jobs released and the workers whose
-- reap goes on in the next calls.
local function releaseReaped(base, reapingKey, jobsKey)
  local budget, released = REAP_BATCH, 0
  local now
  for _, token in ipairs(redis.call('SRANDMEMBER', reapingKey, 10)) do
    if budget <= 0 then break end
    local heldKey = base .. 'held:' .. token
    local members = redis.call('SPOP', heldKey, budget)
    budget = budget - #members
    for _, member in ipairs(members) do
      local jobKey = base .. 'job:' .. member
      if redis.call('HGET', jobKey, 'l') == token then
        now = now or nowMs()
        redis.call('HSET', jobKey, 'l', '', 'e', 'the worker running it stopped (heartbeat lapsed)')
        redis.call('ZADD', jobsKey, now, member)
        released = released + 1
      end
    end
    if redis.call('EXISTS', heldKey) == 0 then
      redis.call('SREM', reapingKey, token)
      redis.call('DEL', base .. 'claim:' .. token)
    end
  end
  if released > 0 then wake(base, now) end
  return released, redis.call('SCARD', reapingKey)
end
