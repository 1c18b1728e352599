--[[
  A worker's heartbeat: one call per worker and interval, whatever the
  number of shards (docs/delivery.md, "Shard ownership"). Renews this
  worker, reaps the workers it judged lapsed (on its own monotonic clock:
  their beat number did not move for a lease) if their number is still the
  one it saw, and returns the whole membership, from which every worker
  computes the same owner for each shard. No decision here reads Redis's clock.

  KEYS[1] members  <prefix>{workers}:members:<format>  (includes/members.lua)

  ARGV[1] worker token
  ARGV[2] due channel <prefix>due (a change of membership is announced there)
  ARGV[3..] pairs: token, beat number of a worker to reap if its number is still that

  Returns { status, token1, score1, token2, score2, ... }: every entry of the
  set, gone workers first (negative scores), then live ones (their beat numbers)
    status: 1 this worker was registered and is renewed,
      0 it was not (its first beat): registered now,
      -1 it was reaped: nothing renewed; it must take a new token, because
      the owners release everything held under this one
]]
-- @include members.lua

local members, token = KEYS[1], ARGV[1]
local changed = false
for i = 3, #ARGV, 2 do
  local score = tonumber(redis.call('ZSCORE', members, ARGV[i]))
  if score and score > 0 and score == tonumber(ARGV[i + 1]) then
    markGone(members, ARGV[i])
    changed = true
  end
end

local status = 1
local score = redis.call('ZADD', members, 'XX', 'INCR', 1, token)
if not score then
  redis.call('ZADD', members, 1, token)
  status = 0
  changed = true
elseif tonumber(score) <= 0 then
  redis.call('ZINCRBY', members, -1, token)
  status = -1
end
if changed then announce(ARGV[2]) end

local out = { status }
for _, v in ipairs(redis.call('ZRANGE', members, 0, -1, 'WITHSCORES')) do out[#out + 1] = v end
return out
