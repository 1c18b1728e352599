-- @include now.lua

-- Records that a pending hold ran out and queues its expiry job.
-- Every script that sees a pending hold past its deadline calls this first,
-- so "expired" is decided exactly once, by whichever script comes first.
-- The job hash copies what the handler needs, so a new generation of the
-- same order can start before this one's handler has run. The generation
-- is unique in the shard for ever (create-7.lua), so the job hash is new.
local function expireOrder(base, id, gen, deadline, payload, now, retentionMs)
  local orderKey = base .. 'order:' .. id
  local member = gen .. ':' .. id
  local jobKey = base .. 'job:' .. member
  redis.call('HSET', orderKey, 's', 'expired', 't', now, 'h', 'pending')
  redis.call('PEXPIRE', orderKey, retentionMs)
  redis.call('HSET', jobKey, 'i', id, 'g', gen, 'd', deadline, 'x', now, 'a', 0)
  if payload then redis.call('HSET', jobKey, 'p', payload) end
  redis.call('ZADD', base .. 'jobs', now, member)
  redis.call('ZREM', base .. 'deadlines', id)
  redis.call('DEL', base .. 'timer:' .. id)
end
