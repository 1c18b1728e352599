--[[
  The sweeper's step for one shard: counts as a beat of this worker
  (workers.lua), hands out due expiry jobs
  (retries, released ones, expiries not yet taken) to this worker, then
  records the pending holds past their deadline as expired and hands those
  out in the same step while the claim has room. Writes to the shared sets
  (deadline index, job queue, held set) go out as one command each.

  Each hand-out increments the job's attempt counter; the pair (worker token,
  attempt) is the claim's fencing token, checked by ack, fail and release, so
  a worker that lost a claim can never record an outcome over the new
  owner's run. A due job whose last run never reported back (its worker
  died) and that has used up its attempts is dead-lettered here.

  A claim is idempotent per (worker, sequence number): when its reply is lost
  (Redis went away after running it) and the same claim is sent again, the
  jobs it claimed are handed back instead of waiting for a takeover.

  KEYS[1] deadline index   <base>deadlines
  KEYS[2] job queue        <base>jobs
  KEYS[3] claim record     <base>claim:<token>  (this worker's last claim in this shard)
  KEYS[4] workers          <base>workers
  KEYS[5] held jobs        <base>held:<token>
  KEYS[6] dead-letter set  <base>dead
  KEYS[7] event outbox     <base>outbox (written only when ARGV[9] > 0)
  (also reads <base>reaping, in the same slot: workers.lua)

  ARGV[1] base
  ARGV[2] max holds to expire and max jobs to claim in this call (at most a few thousand: Lua's unpack limit)
  ARGV[3] unused (leases are judged by the workers, workers.lua)
  ARGV[4] worker token (unique per worker process)
  ARGV[5] result retention in ms
  ARGV[6] claim sequence number (new for each claim of this worker, the same when resent)
  ARGV[7] max attempts
  ARGV[8] running ms: a claimed job is due again after this even if its worker
          lives (a safety net; handlers are aborted long before)
  ARGV[9] outbox cap: 0 when events are off, else the approximate MAXLEN of the outbox

  With events on, a hold expired here appends an `expired` event to the
  outbox, and a job dead-lettered here a `dead` event.

  Returns { now, expiredCount, nextDue, registered, job1..., job2..., ... }
    nextDue: the earliest deadline or job due time left in the shard after this claim, -1 if none
    registered: 1 if this worker was registered in the shard before this call,
      0 if not (first claim, or it was reaped: jobs it still runs here are no longer its own);
      while its reap is still releasing its jobs it is 0 and nothing is handed out
    each job is 7 entries: member (`<generation>:<id>`), id, generation,
    deadline, expiredAt, attempt, payload ('' for none)
]]
-- @include expire-order.lua
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
  local d = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  local j = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
  local a, b = tonumber(d[2]), tonumber(j[2])
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

-- Then the holds past their deadline: each is expired and, while this
-- claim has room, handed to this worker in the same step (its job is
-- written already claimed, attempt 1); the rest wait in the job queue.
-- Their timer keys go in one DEL, within their grace (timer.lua): no
-- `expired` event is published for a hold claimed on time.
local expired = 0
local ended = {}
local timers = {}
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, limit)
for _, id in ipairs(due) do
  local orderKey = base .. 'order:' .. id
  local cur = redis.call('HMGET', orderKey, 's', 'd', 'g', 'p')
  local deadline = tonumber(cur[2])
  if cur[1] == 'pending' and deadline <= now then
    local gen = cur[3]
    local member = gen .. ':' .. id
    local jobKey = base .. 'job:' .. member
    markOrderExpired(base, id, gen, deadline, cur[4], now, ARGV[5], KEYS[7], tonumber(ARGV[9]))
    if #claimed < limit then
      writeJob(jobKey, id, gen, deadline, cur[4], now, token)
      claimInto(member)
      local n = #out
      out[n + 1] = member
      out[n + 2] = id
      out[n + 3] = gen
      out[n + 4] = deadline
      out[n + 5] = now
      out[n + 6] = 1
      out[n + 7] = cur[4] or ''
    else
      writeJob(jobKey, id, gen, deadline, cur[4], now)
      queued[#queued + 1] = now
      queued[#queued + 1] = member
    end
    timers[#timers + 1] = base .. 'timer:' .. id
    ended[#ended + 1] = id
    expired = expired + 1
  elseif cur[1] == 'pending' then
    redis.call('ZADD', KEYS[1], deadline, id) -- stale score: repair it
  else
    ended[#ended + 1] = id -- the hold ended another way
  end
end

if #ended > 0 then redis.call('ZREM', KEYS[1], unpack(ended)) end
if #timers > 0 then redis.call('DEL', unpack(timers)) end
if #queued > 0 then redis.call('ZADD', KEYS[2], unpack(queued)) end
if #held > 0 then redis.call('SADD', KEYS[5], unpack(held)) end
out[2] = expired

-- Only a claim that handed something out needs to be found again when resent.
if #claimed > 0 then
  redis.call('HSET', KEYS[3], 'seq', ARGV[6], 'members', cjson.encode(claimed))
  redis.call('PEXPIRE', KEYS[3], runningMs)
end
out[3] = nextDue()
return out
