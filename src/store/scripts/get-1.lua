--[[
  Reads an order and the server time in one round trip. Writes nothing, so it
  can later run on replicas.

  KEYS[1] order hash

  ARGV none

  Returns { now, field1, value1, field2, value2, ... } (only `now` when unknown)
]]
-- @include now.lua
local now = nowMs()
local out = { now }
local fields = redis.call('HGETALL', KEYS[1])
for i = 1, #fields do out[i + 1] = fields[i] end
return out
