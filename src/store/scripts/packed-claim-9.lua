--[[
  The sweeper's step for one shard in key format 3: claim-7.lua over the
  packed layout (includes/packed.lua). Beats for this worker, hands out due
  expiry jobs, then expires the pending holds past their deadline in
  deadline order, from the first buckets of the deadline index, and hands
  those out in the same step while the claim has room. Finally sets the
  shard timer to the earliest deadline left (deletes it when none is left),
  within its grace: no `expired` event is published for a shard claimed on
  time.

  KEYS[1] deadline index   <base>index
  KEYS[2] job queue        <base>jobs
  KEYS[3] claim record     <base>claim:<token>
  KEYS[4] workers          <base>workers
  KEYS[5] held jobs        <base>held:<token>
  KEYS[6] dead-letter set  <base>dead
  KEYS[7] event outbox     <base>outbox (written only when ARGV[9] > 0)
  KEYS[8] bucket table     <base>table
  KEYS[9] shard timer      <base>timer
  (also reads <base>reaping, in the same slot: workers.lua)

  ARGV[1]..ARGV[9] as claim-7.lua
  ARGV[10] geometry (src/keys.ts packingArg)

  Returns as claim-7.lua:
  { now, expiredCount, nextDue, registered, job1..., job2..., ... }, each
  job 7 entries: member, id, generation, deadline, expiredAt, attempt, payload ('' for none)
]]
-- @include packed-expire.lua
-- @include workers.lua
-- @include dead-letter.lua

local base, limit, token = ARGV[1], tonumber(ARGV[2]), ARGV[4]
local maxAttempts, runningMs = tonumber(ARGV[7]), tonumber(ARGV[8])
local now = nowMs()

local registered = beat(KEYS[4], base .. 'reaping', token)

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
  local a = indexHead(base)
  local j = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
  local b = tonumber(j[2])
  if a and b then return math.min(a, b) end
  return a or b or -1
end

-- Being reaped: what this worker claimed here is being released; it claims again once that is done.
if registered < 0 then return { now, 0, nextDue(), 0 } end

local last = redis.call('HMGET', KEYS[3], 'seq', 'members')
if last[1] == ARGV[6] then
  local out = { now, 0, 0, registered }
  for _, member in ipairs(cjson.decode(last[2])) do
    local jobKey = base .. 'job:' .. member
    local job = redis.call('HMGET', jobKey, 'l', 'a')
    if job[1] == token then appendJob(out, member, jobKey, tonumber(job[2])) end
  end
  out[3] = nextDue()
  return out
end

local out = { now, 0, 0, registered }
local claimed = {}
local queued = {}     -- ZADD arguments: score, member, ...
local held = {}       -- members to add to this worker's held set

local function claimInto(member)
  queued[#queued + 1] = now + runningMs
  queued[#queued + 1] = member
  held[#held + 1] = member
  claimed[#claimed + 1] = member
end

-- Due jobs first (retries, jobs released by lapsed workers, expiries no
-- worker took yet), oldest first, so new expiries never starve them.
local members = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, limit)
for _, member in ipairs(members) do
  local jobKey = base .. 'job:' .. member
  local job = redis.call('HMGET', jobKey, 'a', 'l', 'a0')
  local attempts = tonumber(job[1])
  if not attempts then
    redis.call('ZREM', KEYS[2], member)
  else
    if job[2] and job[2] ~= '' then
      -- Due while still held: its holder outlived the safety net. Take it from that holder.
      redis.call('SREM', base .. 'held:' .. job[2], member)
    end
    -- a0: where the attempts of a replayed job start again (replay-3.lua).
    if attempts - (tonumber(job[3]) or 0) >= maxAttempts then
      deadLetter(base, member, jobKey, 'attempt ' .. attempts .. ' never reported back: the worker stopped or lost its claim', attempts, now,
        KEYS[7], tonumber(ARGV[9]))
    else
      local attempt = attempts + 1
      redis.call('HSET', jobKey, 'a', attempt, 'l', token)
      claimInto(member)
      appendJob(out, member, jobKey, attempt)
    end
  end
end

-- Then the holds past their deadline, in deadline order from the first
-- index buckets: each is expired and, while this claim has room, handed to
-- this worker in the same step; the rest wait in the job queue. Each index
-- bucket loses its expired members in one ZREM.
local expired = 0
local geo = geometry(ARGV[10])
local tbl = readTable(base)
local examined, position = 0, 0
while examined < limit do
  local bucket = redis.call('ZRANGE', KEYS[1], position, position, 'WITHSCORES')
  -- Every member of a bucket is at least its bound: past one above now nothing is due.
  if not bucket[1] or tonumber(bucket[2]) > now then break end
  local bucketKey = indexKey(base, bucket[1])
  local due = redis.call('ZRANGEBYSCORE', bucketKey, '-inf', now, 'LIMIT', 0, limit - examined)
  examined = examined + #due
  for _, member in ipairs(due) do
    local r, where, spot
    if string.sub(member, 1, 1) == '#' then
      where = { key = base .. 'pk:' .. string.sub(member, 2) }
      local v = redis.call('GET', where.key)
      if v then
        r = decodeRecord(v)
        spot = holdSpot(geo, r.id)
      end
    else
      spot = holdSpot(geo, member)
      r, where = findHold(base, geo, tbl, spot)
    end
    if r then
      local holder = nil
      if #claimed < limit then holder = token end
      local jobMember = expirePacked(base, spot, where, r, now, ARGV[5], KEYS[7], tonumber(ARGV[9]), holder)
      if holder then
        claimInto(jobMember)
        local n = #out
        out[n + 1] = jobMember
        out[n + 2] = r.id
        out[n + 3] = r.gen
        out[n + 4] = r.deadline
        out[n + 5] = now
        out[n + 6] = 1
        out[n + 7] = r.payload or ''
      else
        queued[#queued + 1] = now
        queued[#queued + 1] = jobMember
      end
      expired = expired + 1
    end
  end
  if #due > 0 then redis.call('ZREM', bucketKey, unpack(due)) end
  if redis.call('EXISTS', bucketKey) == 0 then
    redis.call('ZREM', KEYS[1], bucket[1])
  elseif examined < limit then
    -- Nothing more due here: only a bucket with the same bound can still hold some.
    position = position + 1
  end
end

if #queued > 0 then redis.call('ZADD', KEYS[2], unpack(queued)) end
if #held > 0 then redis.call('SADD', KEYS[5], unpack(held)) end
out[2] = expired
local head = indexHead(base)
if head then setTimer(KEYS[9], 1, math.max(1, head - now)) else redis.call('DEL', KEYS[9]) end

-- Only a claim that handed something out needs to be found again when resent.
if #claimed > 0 then
  redis.call('HSET', KEYS[3], 'seq', ARGV[6], 'members', cjson.encode(claimed))
  redis.call('PEXPIRE', KEYS[3], runningMs)
end
out[3] = nextDue()
return out
