--[[
  A worker's heartbeat in one shard, sent on a timer that does not depend on
  how many jobs it holds. Also reaps the workers this one judged lapsed (on
  its own monotonic clock: their beat number did not move for a lease), if
  their beat number is still the one it saw, and releases a bounded number of
  reaped workers' jobs (workers.lua). No lease decision reads Redis's clock.

  KEYS[1] workers    <base>workers
  KEYS[2] job queue  <base>jobs
  KEYS[3] reaping    <base>reaping

  ARGV[1] base
  ARGV[2] worker token
  ARGV[3..] pairs: token, beat number of a worker to reap if its number is still that

  Returns { registered, released, reaping, token1, beat1, token2, beat2, ... }
    registered: 1 if this worker was still registered (its claims here stand),
      0 if not (first heartbeat, or it was reaped: its jobs here went to others),
      -1 while its reap is still releasing its jobs
    released: jobs of reaped workers made due by this call
    reaping: reaped workers whose jobs are still to be released (by the next calls)
    then the workers of the shard (at most 200, least recently beaten first)
    with their beat numbers, this one included
]]
-- @include workers.lua
local registered = beat(KEYS[1], KEYS[3], ARGV[2])
for i = 3, #ARGV, 2 do
  reapIfUnchanged(KEYS[1], KEYS[3], ARGV[i], ARGV[i + 1])
end
local released, reaping = releaseReaped(ARGV[1], KEYS[3], KEYS[2])
local out = { registered, released, reaping }
for _, v in ipairs(redis.call('ZRANGE', KEYS[1], 0, 199, 'WITHSCORES')) do out[#out + 1] = v end
return out
