#!lua flags=no-writes
--[[
  Reads an order and the server time in one round trip. Declared no-writes
  (the first line), so Redis runs it on replicas: GET /checkout/:id with
  REDIS_READ_FROM=replica, and a cluster replica does not redirect it.

  KEYS[1] order record  <base>order:<id> (a hash, or a packed ended format 3 hold: includes/order-record.lua)

  ARGV none

  Returns { now, field1, value1, field2, value2, ... } (only `now` when unknown)
]]
-- @include now.lua
-- @include order-record.lua
local now = nowMs()
local out = { now }
local fields = orderGetAll(KEYS[1])
for i = 1, #fields do out[i + 1] = fields[i] end
return out
