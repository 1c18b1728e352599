--[[
  Records a failed handler run: schedules a retry, or moves the job to the
  dead-letter set after its last attempt. The job hash keeps the last error.
  Only the current claim (worker token and attempt) may record it.

  KEYS[1] job queue        <base>jobs
  KEYS[2] job hash         <base>job:<generation>:<id>
  KEYS[3] order record     <base>order:<id> (includes/order-record.lua)
  KEYS[4] dead-letter set  <base>dead
  KEYS[5] held jobs        <base>held:<token>
  KEYS[6] event outbox     <base>outbox (written only when ARGV[9] > 0)

  ARGV[1] base
  ARGV[2] job member
  ARGV[3] worker token
  ARGV[4] attempt of the run that failed
  ARGV[5] generation
  ARGV[6] error message
  ARGV[7] max attempts
  ARGV[8] backoff in ms: the first retry of a set of attempts waits between
          half of it and all of it, each further one twice as long (capped at an
          hour); a set starts with the job, and again at a replay (`a0`)
  ARGV[9] outbox cap: 0 when events are off, else the approximate MAXLEN of the outbox
  ARGV[10] jitter in [0, 1]: where in that range the delay falls (the caller's
          random number: scripts must not draw their own)

  A retry that is now the shard's earliest job is published on `<prefix>due`
  (wake.lua).

  With events on, a job dead-lettered here appends a `dead` event to the outbox.

  Returns { code, retry delay in ms (0 unless a retry was scheduled) }; code:
    1  retry scheduled
    2  dead: moved to the dead-letter set
    0  CLAIM_LOST
]]
-- @include now.lua
-- @include dead-letter.lua
-- @include wake.lua
local now = nowMs()
local base, member, err = ARGV[1], ARGV[2], ARGV[6]
local job = redis.call('HMGET', KEYS[2], 'l', 'a', 'a0')
if job[1] ~= ARGV[3] or job[2] ~= ARGV[4] then return { 0, 0 } end

local attempts = tonumber(ARGV[4])
redis.call('SREM', KEYS[5], member)
-- a0: where the attempts of a replayed job start again (replay-3.lua).
local inSet = attempts - (tonumber(job[3]) or 0)
if inSet >= tonumber(ARGV[7]) then
  deadLetter(base, member, KEYS[2], err, attempts, now, KEYS[6], tonumber(ARGV[9]))
  return { 2, 0 }
end

-- Exponential with "equal jitter": half fixed, half random.
local exp = math.min(tonumber(ARGV[8]) * 2 ^ math.max(0, inSet - 1), 3600000)
local delay = math.floor(exp / 2 + tonumber(ARGV[10]) * exp / 2 + 0.5)
redis.call('HSET', KEYS[2], 'e', err, 'l', '')
redis.call('ZADD', KEYS[1], now + delay, member)
wakeIfFirst(KEYS[1], member, now + delay, base)
if orderGet(KEYS[3], 'g')[1] == ARGV[5] then
  orderUpdate(KEYS[3], 'h', 'retrying', 'e', err, 'a', attempts)
end
return { 1, delay }
