--[[
  The event relay's first step for one shard: takes (or renews) the shard's
  relay lock and reads the oldest outbox entries. Only the relay holding the
  lock reads, so two relays never copy the same entries at once; a relay
  that crashed holding it delays the shard by the lock's ttl at most.

  KEYS[1] relay lock    <base>relay
  KEYS[2] event outbox  <base>outbox

  ARGV[1] relay token (unique per relay)
  ARGV[2] lock ttl in ms
  ARGV[3] max entries to read

  Returns
    { 0 }                                  another relay holds the lock
    { 1, id1, fields1, id2, fields2, ... } locked by this relay; the oldest entries, oldest first
      (each fields is the flat field/value list of the entry; none when the outbox is empty)
]]
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then return { 0 } end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
local out = { 1 }
for _, entry in ipairs(redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', ARGV[3])) do
  out[#out + 1] = entry[1]
  out[#out + 1] = entry[2]
end
return out
