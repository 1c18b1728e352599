--[[
  A worker's heartbeat in one shard, sent on a timer that does not depend on
  how many jobs it holds. Also reaps workers whose heartbeat lapsed: their
  jobs become due at once, for whichever live worker claims first.

  KEYS[1] workers    <base>workers
  KEYS[2] job queue  <base>jobs

  ARGV[1] base
  ARGV[2] worker token
  ARGV[3] heartbeat ttl in ms

  Returns { now, registered, released, nextLapse }
    registered: 1 if this worker was still registered (its claims here stand),
      0 if not (first heartbeat, or it was reaped: its jobs here went to others)
    released: jobs of lapsed workers made due by this call
    nextLapse: when the earliest other heartbeat in the shard lapses (server ms), -1 if none
]]
-- @include workers.lua
local now = nowMs()
local registered = renewHeartbeat(KEYS[1], ARGV[2], now, tonumber(ARGV[3]))
local released = reapLapsedWorkers(ARGV[1], KEYS[1], KEYS[2], now)
-- The earliest entry that is not ours.
local others = redis.call('ZRANGE', KEYS[1], 0, 1, 'WITHSCORES')
local lapse = -1
if others[1] and others[1] ~= ARGV[2] then lapse = tonumber(others[2])
elseif others[3] then lapse = tonumber(others[4]) end
return { now, registered, released, lapse }
