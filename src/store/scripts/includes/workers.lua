-- @include now.lua
-- @include wake.lua

-- Worker liveness in one shard, judged without any clock of Redis's.
-- Each worker process keeps an entry in the shard's workers ZSET (member:
-- its token, score: its beat number) and the set of jobs it holds there,
-- <base>held:<token>. Every beat (heartbeat or claim) gives the worker a beat
-- number one higher than any in the shard. The other workers watch those
-- numbers and judge, each on its own monotonic clock, that a worker whose
-- number has not moved for a lease has lapsed; they then ask for it to be
-- reaped, naming the number they saw, and the reap happens only if it is
-- still that number (a worker that beat meanwhile is never reaped).
-- A reaped worker leaves the ZSET and enters <base>reaping until every job it
-- still held is released (due now, no holder), a bounded number per call.

-- Jobs a single call releases at most: a reap never blocks Redis for long.
local REAP_BATCH = 100

-- Renews this worker in the shard. Returns 1 when it was registered (nothing
-- it holds here was taken over), 0 when it was not (first contact, or it was
-- reaped), -1 while its reap is still releasing its jobs (not renewed: it
-- must not claim here until that is done).
local function beat(workersKey, reapingKey, token)
  if redis.call('SISMEMBER', reapingKey, token) == 1 then return -1 end
  local registered = redis.call('ZSCORE', workersKey, token) and 1 or 0
  local top = redis.call('ZRANGE', workersKey, -1, -1, 'WITHSCORES')
  redis.call('ZADD', workersKey, (tonumber(top[2]) or 0) + 1, token)
  return registered
end

-- Reaps a worker if its beat number is still `seen`. Returns 1 if reaped.
local function reapIfUnchanged(workersKey, reapingKey, token, seen)
  local score = redis.call('ZSCORE', workersKey, token)
  if not score or tonumber(score) ~= tonumber(seen) then return 0 end
  redis.call('ZREM', workersKey, token)
  redis.call('SADD', reapingKey, token)
  return 1
end

-- Releases up to REAP_BATCH jobs of reaped workers; a worker whose jobs are
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
