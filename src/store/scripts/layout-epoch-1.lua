--[[
  Adds an epoch to a layout record written before records had one: replaces
  the record only if it is still exactly what the caller read. Processes
  that race to add one all get back the first epoch written, so they agree.

  KEYS[1] layout record  <prefix>layout

  ARGV[1] the record as the caller read it (JSON)
  ARGV[2] the same record with the caller's epoch added (JSON)

  Returns the record stored now: ARGV[2], or the one another process wrote
  first; false (nil) when the record is gone.
]]
local current = redis.call('GET', KEYS[1])
if current == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2])
  return ARGV[2]
end
return current
