-- @include now.lua

-- Worker liveness in one shard. Each worker process keeps an entry in the
-- shard's workers ZSET (member: its token, score: when its heartbeat lapses,
-- server ms) and the set of jobs it holds there, <base>held:<token>.
-- A worker whose heartbeat lapsed is reaped: each job it still holds is
-- released (due now, no holder) so any live worker claims it at once.
-- Returns how many jobs were released.
local function reapLapsedWorkers(base, workersKey, jobsKey, now)
  local released = 0
  local lapsed = redis.call('ZRANGEBYSCORE', workersKey, '-inf', now, 'LIMIT', 0, 100)
  for _, token in ipairs(lapsed) do
    local heldKey = base .. 'held:' .. token
    for _, member in ipairs(redis.call('SMEMBERS', heldKey)) do
      local jobKey = base .. 'job:' .. member
      if redis.call('HGET', jobKey, 'l') == token then
        redis.call('HSET', jobKey, 'l', '', 'e', 'the worker running it stopped (heartbeat lapsed)')
        redis.call('ZADD', jobsKey, now, member)
        released = released + 1
      end
    end
    redis.call('DEL', heldKey, base .. 'claim:' .. token)
    redis.call('ZREM', workersKey, token)
  end
  return released
end

-- Renews this worker's heartbeat in the shard. Returns 1 when it was still
-- registered (nothing it holds here was taken over), 0 when it was not
-- (first contact, or it was reaped and its jobs went to other workers).
local function renewHeartbeat(workersKey, token, now, ttl)
  local registered = redis.call('ZSCORE', workersKey, token) and 1 or 0
  redis.call('ZADD', workersKey, now + ttl, token)
  return registered
end

