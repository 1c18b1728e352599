--[[
  When is the next thing due in this shard? Lets the sweeper sleep until
  exactly then instead of polling.

  KEYS[1] deadline index
  KEYS[2] job queue

  ARGV none

  Returns { now, nextDeadline or -1, nextJob or -1 }
]]
-- @include now.lua
local now = nowMs()
local d = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local j = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
return { now, tonumber(d[2]) or -1, tonumber(j[2]) or -1 }
