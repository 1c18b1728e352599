--[[
  The sweeper's step for one shard: records every pending hold past its
  deadline as expired, then hands out due expiry jobs (new, retries, and jobs
  whose lease ran out because their worker died) under a lease.

  A claim is idempotent per (worker, sequence number): when its reply is lost
  (Redis went away after running it) and the same claim is sent again, the
  jobs it claimed are handed back instead of waiting for their lease to lapse.

  KEYS[1] deadline index   <base>deadlines
  KEYS[2] job queue        <base>jobs
  KEYS[3] claim record     <base>claim:<lease token>  (the worker's last claim in this shard)

  ARGV[1] base
  ARGV[2] max holds to expire and max jobs to claim in this call
  ARGV[3] lease in ms
  ARGV[4] lease token (unique per worker)
  ARGV[5] result retention in ms
  ARGV[6] claim sequence number (new for each claim of this worker, the same when resent)

  Returns { now, expiredCount, nextDue, job1..., job2..., ... }
    nextDue: the earliest deadline or job due time left in the shard after this claim, -1 if none
    each job is 7 entries: member (`<generation>:<id>`), id, generation,
    deadline, expiredAt, attempt, payload ('' for none)
]]
-- @include expire-order.lua

local base, limit, lease, token = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local now = nowMs()

local function appendJob(out, member, jobKey, attempt)
  local job = redis.call('HMGET', jobKey, 'i', 'g', 'd', 'x', 'p')
  local n = #out
  out[n + 1] = member
  out[n + 2] = job[1]
  out[n + 3] = job[2]
  out[n + 4] = job[3]
  out[n + 5] = job[4]
  out[n + 6] = attempt
  out[n + 7] = job[5] or ''
end

local function nextDue()
  local d = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  local j = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
  local a, b = tonumber(d[2]), tonumber(j[2])
  if a and b then return math.min(a, b) end
  return a or b or -1
end

local last = redis.call('HMGET', KEYS[3], 'seq', 'members')
if last[1] == ARGV[6] then
  local out = { now, 0, 0 }
  for _, member in ipairs(cjson.decode(last[2])) do
    local jobKey = base .. 'job:' .. member
    if redis.call('HGET', jobKey, 'l') == token then
      appendJob(out, member, jobKey, tonumber(redis.call('HGET', jobKey, 'a')))
    end
  end
  out[3] = nextDue()
  return out
end

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

local out = { now, expired, 0 }
local claimed = {}
local members = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, limit)
for _, member in ipairs(members) do
  local jobKey = base .. 'job:' .. member
  if redis.call('EXISTS', jobKey) == 0 then
    redis.call('ZREM', KEYS[2], member)
  else
    local attempt = redis.call('HINCRBY', jobKey, 'a', 1)
    redis.call('HSET', jobKey, 'l', token)
    redis.call('ZADD', KEYS[2], now + lease, member)
    claimed[#claimed + 1] = member
    appendJob(out, member, jobKey, attempt)
  end
end

-- cjson encodes an empty table as {}, which decodes back to an empty table too.
redis.call('HSET', KEYS[3], 'seq', ARGV[6], 'members', cjson.encode(claimed))
redis.call('PEXPIRE', KEYS[3], lease)
out[3] = nextDue()
return out
