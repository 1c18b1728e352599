-- The workers of one key layout, in one sorted set (src/expiry/heartbeat.ts).
-- A live worker's score is its beat number, 1 at its first beat and one
-- higher at each beat after: other workers watch the numbers and judge, each
-- on its own monotonic clock, that a worker whose number has not moved for a
-- lease has lapsed. A worker that is stopping beats with a half added
-- (members-leave-1.lua): still live, but it owns no shard. A worker that lapsed (reaped) or left stays in the set a
-- while with a negative score, -n for the n-th to go, so the owners of the
-- shards release whatever it still held there; the KEEP_GONE most recent are
-- kept. Any change of membership is announced on the due channel
-- ('members'), so every worker rebalances at once instead of at its next beat.

local KEEP_GONE = 32

-- Marks a worker gone, behind every worker gone before it, and keeps only
-- the KEEP_GONE most recent.
local function markGone(membersKey, token)
  local first = redis.call('ZRANGE', membersKey, 0, 0, 'WITHSCORES')
  local lowest = math.min(tonumber(first[2]) or 0, 0)
  redis.call('ZADD', membersKey, lowest - 1, token)
  local gone = redis.call('ZCOUNT', membersKey, '-inf', '(0')
  if gone > KEEP_GONE then redis.call('ZREMRANGEBYRANK', membersKey, KEEP_GONE, gone - 1) end
end

local function announce(channel)
  redis.call('PUBLISH', channel, 'members')
end
