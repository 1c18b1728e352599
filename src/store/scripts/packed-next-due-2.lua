--[[
  next-due-2.lua for key format 3: the earliest deadline is the first member
  of the first bucket of the deadline index.

  KEYS[1] deadline index  <base>index
  KEYS[2] job queue       <base>jobs

  ARGV[1] base

  Returns { now, nextDeadline or -1, nextJob or -1 }
]]
-- @include now.lua
local now = nowMs()
local first = redis.call('ZRANGE', KEYS[1], 0, 0)
local head = first[1] and redis.call('ZRANGE', ARGV[1] .. 'i:' .. first[1], 0, 0, 'WITHSCORES') or {}
local j = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
return { now, tonumber(head[2]) or -1, tonumber(j[2]) or -1 }
