--[[
  The sweeper's step for one shard: records every pending hold past its
  deadline as expired, then hands out due expiry jobs (new, retries, and jobs
  whose lease ran out because their worker died) under a lease.

  KEYS[1] deadline index   <base>deadlines
  KEYS[2] job queue        <base>jobs

  ARGV[1] base
  ARGV[2] max holds to expire and max jobs to claim in this call
  ARGV[3] lease in ms
  ARGV[4] lease token (unique per worker)
  ARGV[5] result retention in ms

  Returns { now, expiredCount, job1..., job2..., ... } where each job is 7 entries:
    member (`<generation>:<id>`), id, generation, deadline, expiredAt, attempt, payload ('' for none)
]]
-- @include expire-order.lua

local base, limit, lease, token = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local now = nowMs()
local expired = 0

local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, limit)
for _, id in ipairs(due) do
  local cur = redis.call('HMGET', base .. 'order:' .. id, 's', 'd', 'g', 'p')
  local deadline = tonumber(cur[2])
  if cur[1] == 'pending' and deadline <= now then
    expireOrder(base, id, cur[3], deadline, cur[4], now, ARGV[5])
    expired = expired + 1
  elseif cur[1] == 'pending' then
    redis.call('ZADD', KEYS[1], deadline, id) -- stale score: repair it
  else
    redis.call('ZREM', KEYS[1], id) -- the hold ended another way
  end
end

local out = { now, expired }
local members = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, limit)
for _, member in ipairs(members) do
  local jobKey = base .. 'job:' .. member
  local job = redis.call('HMGET', jobKey, 'i', 'g', 'd', 'x', 'p')
  if not job[1] then
    redis.call('ZREM', KEYS[2], member)
  else
    local attempt = redis.call('HINCRBY', jobKey, 'a', 1)
    redis.call('HSET', jobKey, 'l', token)
    redis.call('ZADD', KEYS[2], now + lease, member)
    local n = #out
    out[n + 1] = member
    out[n + 2] = job[1]
    out[n + 3] = job[2]
    out[n + 4] = job[3]
    out[n + 5] = job[4]
    out[n + 6] = attempt
    out[n + 7] = job[5] or ''
  end
end
return out
