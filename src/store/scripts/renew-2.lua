--[[
  Extends the lease of a job whose handler is still running.

  KEYS[1] job queue  <base>jobs
  KEYS[2] job hash   <base>job:<generation>:<id>

  ARGV[1] job member
  ARGV[2] lease token
  ARGV[3] lease in ms

  Returns
    1  renewed
    0  LEASE_LOST
]]
-- @include now.lua
local now = nowMs()
if redis.call('HGET', KEYS[2], 'l') ~= ARGV[2] then return 0 end
redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[3]), ARGV[1])
return 1
