-- Moves a job to the shard's dead-letter set with its last error, and marks
-- the order `dead` if it is still on that generation. Shared by fail (a run
-- failed for the last time) and claim (the last run never reported back).
-- With events on (outboxCap > 0) it appends a `dead` event to the outbox.
-- @include outbox.lua
-- @include order-record.lua
local function deadLetter(base, member, jobKey, err, attempts, now, outboxKey, outboxCap)
  redis.call('ZREM', base .. 'jobs', member)
  redis.call('ZADD', base .. 'dead', now, member)
  redis.call('HSET', jobKey, 'e', err, 'l', '', 'f', now)
  local job = redis.call('HMGET', jobKey, 'i', 'g')
  local orderKey = base .. 'order:' .. job[1]
  if orderGet(orderKey, 'g')[1] == job[2] then
    orderUpdate(orderKey, 'h', 'dead', 'e', err, 'a', attempts)
  end
  recordEvent(outboxKey, outboxCap, { 't', 'dead', 'i', job[1], 'g', job[2], 'at', now, 'a', attempts, 'e', err })
end
