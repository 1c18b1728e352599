-- @include now.lua
-- @include outbox.lua

-- The order's side of an expiry: `expired`, its handler outcome pending,
-- kept for the result retention from now on. With events on (outboxCap > 0)
-- its `expired` event goes to the outbox in the same step, like every other
-- change of an order: it never depends on what the handlers do.
local function recordExpired(outboxKey, outboxCap, id, gen, deadline, payload, now)
  recordEvent(outboxKey, outboxCap, {
    't', 'expired', 'i', id, 'g', gen, 'at', now, 'd', deadline, 'pb', payload and #payload or 0
  })
end

local function markOrderExpired(base, id, gen, deadline, payload, now, retentionMs, outboxKey, outboxCap)
  local orderKey = base .. 'order:' .. id
  redis.call('HSET', orderKey, 's', 'expired', 't', now, 'h', 'pending')
  redis.call('PEXPIRE', orderKey, retentionMs)
  recordExpired(outboxKey, outboxCap, id, gen, deadline, payload, now)
end

-- Writes an expiry job's hash: queued (attempt 0, no holder) or, with a
-- holder, already claimed by that worker as attempt 1.
local function writeJob(jobKey, id, gen, deadline, payload, now, holder)
  if holder then
    redis.call('HSET', jobKey, 'i', id, 'g', gen, 'd', deadline, 'x', now, 'a', 1, 'l', holder)
  else
    redis.call('HSET', jobKey, 'i', id, 'g', gen, 'd', deadline, 'x', now, 'a', 0)
  end
  if payload then redis.call('HSET', jobKey, 'p', payload) end
end

-- Records that a pending hold ran out and queues its expiry job.
-- Every script that sees a pending hold past its deadline calls this first,
-- so "expired" is decided exactly once, by whichever script comes first.
-- The job hash copies what the handler needs, so a new generation of the
-- same order can start before this one's handler has run. The generation
-- is unique in the shard for ever (create-7.lua), so the job hash is new.
local function expireOrder(base, id, gen, deadline, payload, now, retentionMs, outboxKey, outboxCap)
  local member = gen .. ':' .. id
  markOrderExpired(base, id, gen, deadline, payload, now, retentionMs, outboxKey, outboxCap)
  writeJob(base .. 'job:' .. member, id, gen, deadline, payload, now)
  redis.call('ZADD', base .. 'jobs', now, member)
  redis.call('ZREM', base .. 'deadlines', id)
  redis.call('DEL', base .. 'timer:' .. id)
end
