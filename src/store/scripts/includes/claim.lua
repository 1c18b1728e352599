-- The sweeper's claim, shared by claim-7.lua and packed-claim-9.lua: they
-- take the same KEYS[2..7] and ARGV[1..9] and differ only in where pending
-- holds live. Each passes two functions of its layout:
--   earliestDeadline()  the earliest pending deadline in the shard, or nil
--   expireDue(claim)    expires the holds past their deadline (at most
--                       claim.limit) and returns how many; for each one it
--                       calls claim.handOut(...) while claim.hasRoom(), else
--                       claim.queue(member)
-- @include now.lua
-- @include dead-letter.lua

local function claimShard(earliestDeadline, expireDue)
  local base, limit, token = ARGV[1], tonumber(ARGV[2]), ARGV[4]
  local maxAttempts, runningMs = tonumber(ARGV[7]), tonumber(ARGV[8])
  local now = nowMs()

  -- Only the shard's owner, in the epoch it names, claims here (own-3.lua).
  local owns = redis.call('GET', KEYS[4]) == ARGV[3] .. ':' .. token and 1 or 0

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
    local a = earliestDeadline()
    local j = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
    local b = tonumber(j[2])
    if a and b then return math.min(a, b) end
    return a or b or -1
  end

  -- A resent claim hands back what the lost call claimed: still held by this
  -- worker, its to run, even if the shard changed owner since.
  local last = redis.call('HMGET', KEYS[3], 'seq', 'members')
  if last[1] == ARGV[6] then
    local out = { now, 0, 0, owns }
    for _, member in ipairs(cjson.decode(last[2])) do
      local jobKey = base .. 'job:' .. member
      local job = redis.call('HMGET', jobKey, 'l', 'a')
      if job[1] == token then appendJob(out, member, jobKey, tonumber(job[2])) end
    end
    out[3] = nextDue()
    return out
  end

  if owns == 0 then return { now, 0, nextDue(), 0 } end

  local out = { now, 0, 0, owns }
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
  local claim = { now = now, limit = limit, token = token }
  function claim.hasRoom() return #claimed < limit end
  function claim.handOut(member, id, gen, deadline, payload)
    claimInto(member)
    local n = #out
    out[n + 1] = member
    out[n + 2] = id
    out[n + 3] = gen
    out[n + 4] = deadline
    out[n + 5] = now
    out[n + 6] = 1
    out[n + 7] = payload or ''
  end
  function claim.queue(member)
    queued[#queued + 1] = now
    queued[#queued + 1] = member
  end
  out[2] = expireDue(claim)

  if #queued > 0 then redis.call('ZADD', KEYS[2], unpack(queued)) end
  if #held > 0 then redis.call('SADD', KEYS[5], unpack(held)) end

  -- Only a claim that handed something out needs to be found again when resent.
  if #claimed > 0 then
    redis.call('HSET', KEYS[3], 'seq', ARGV[6], 'members', cjson.encode(claimed))
    redis.call('PEXPIRE', KEYS[3], runningMs)
  end
  out[3] = nextDue()
  return out
end
