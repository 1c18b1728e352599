#!lua flags=no-writes
--[[
  Reads an order in key format 3 and the server time in one round trip: the
  pending hold from its bucket (one HGET), else the order hash of an ended
  one (its packed record, includes/order-record.lua, read as the fields of
  an order hash). Declared no-writes, so it runs on replicas (see get-1.lua).

  KEYS[1] bucket table  <base>table
  KEYS[2] order hash    <base>order:<id>

  ARGV[1] base
  ARGV[2] order id
  ARGV[3] geometry (src/keys.ts packingArg)

  Returns { now, field1, value1, field2, value2, ... } with the fields of
  the order hash (docs/keys.md); only `now` when unknown.
]]
-- @include packed.lua
local geo, now, spot = openHold(ARGV[3], ARGV[2])
local r = findHold(ARGV[1], geo, readTable(ARGV[1]), spot)
if r then
  local out = { now, 'g', r.gen, 's', 'pending', 'c', r.created, 'd', r.deadline }
  local payload = loadPayload(ARGV[1], r)
  if payload then
    out[#out + 1] = 'p'
    out[#out + 1] = payload
  end
  return out
end
local out = { now }
local fields = orderGetAll(KEYS[2])
for i = 1, #fields do out[i + 1] = fields[i] end
return out
