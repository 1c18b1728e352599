--[[
  The sweeper's step for one shard, by the shard's owner only (own-3.lua):
  hands out due expiry jobs
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
  KEYS[4] owner record     <base>owner:<format>
  KEYS[5] held jobs        <base>held:<token>
  KEYS[6] dead-letter set  <base>dead
  KEYS[7] event outbox     <base>outbox (written only when ARGV[9] > 0)

  ARGV[1] base
  ARGV[2] max holds to expire and max jobs to claim in this call (at most a few thousand: Lua's unpack limit)
  ARGV[3] the owner epoch this worker holds the shard in (own-3.lua)
  ARGV[4] worker token (unique per worker process)
  ARGV[5] result retention in ms
  ARGV[6] claim sequence number (new for each claim of this worker, the same when resent)
  ARGV[7] max attempts
  ARGV[8] running ms: a claimed job is due again after this even if its worker
          lives (a safety net; handlers are aborted long before)
  ARGV[9] outbox cap: 0 when events are off, else the approximate MAXLEN of the outbox

  With events on, a hold expired here appends an `expired` event to the
  outbox, and a job dead-lettered here a `dead` event.

  Returns { now, expiredCount, nextDue, owns, job1..., job2..., ... }
    nextDue: the earliest deadline or job due time left in the shard after this claim, -1 if none
    owns: 1 if this worker owns the shard in that epoch, 0 if not: then
      nothing new is handed out (a resent claim still hands back what the
      lost call claimed)
    each job is 7 entries: member (`<generation>:<id>`), id, generation,
    deadline, expiredAt, attempt, payload ('' for none)
]]
-- @include expire-order.lua
-- @include claim.lua
-- @include order-record.lua

local base = ARGV[1]

local function earliestDeadline()
  local d = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return tonumber(d[2])
end

-- Their timer keys go in one DEL, within their grace (timer.lua): no
-- `expired` event is published for a hold claimed on time.
local function expireDue(claim)
  local now = claim.now
  local expired = 0
  local ended = {}
  local timers = {}
  local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, claim.limit)
  for _, id in ipairs(due) do
    local orderKey = base .. 'order:' .. id
    local cur = orderGet(orderKey, 's', 'd', 'g', 'p')
    local deadline = tonumber(cur[2])
    if cur[1] == 'pending' and deadline <= now then
      local gen = cur[3]
      local member = gen .. ':' .. id
      local jobKey = base .. 'job:' .. member
      markOrderExpired(base, id, gen, deadline, cur[4], now, ARGV[5], KEYS[7], tonumber(ARGV[9]))
      if claim.hasRoom() then
        writeJob(jobKey, id, gen, deadline, cur[4], now, claim.token)
        claim.handOut(member, id, gen, deadline, cur[4])
      else
        writeJob(jobKey, id, gen, deadline, cur[4], now)
        claim.queue(member)
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
  return expired
end

return claimShard(earliestDeadline, expireDue)
