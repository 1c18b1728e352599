--[[
  The event relay's last step for one shard: deletes the outbox entries it
  copied to the events stream and, when it is done with the shard, gives
  the relay lock back (only its own: a lock that lapsed and went to another
  relay stays with that one).

  KEYS[1] relay lock    <base>relay
  KEYS[2] event outbox  <base>outbox

  ARGV[1] relay token
  ARGV[2] 1 to give the lock back, 0 to keep it for the next batch
  ARGV[3..] ids of the copied entries

  Returns the number of entries deleted
]]
local deleted = 0
if #ARGV >= 3 then deleted = redis.call('XDEL', KEYS[2], unpack(ARGV, 3)) end
if ARGV[2] == '1' and redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return deleted
