-- The timer key outlives the deadline by TIMER_GRACE_MS. The sweeper claims
-- a hold at its deadline and deletes the timer then, before it expires, so
-- Redis publishes no `expired` event nobody needs (and does not have to
-- find the key by sampling). The event still comes, that much later, for a
-- hold no worker claimed on time: it is the second trigger, not the first.
local TIMER_GRACE_MS = 250

local function setTimer(key, generation, ttl)
  redis.call('SET', key, generation, 'PX', ttl + TIMER_GRACE_MS)
end
