--[[
  Removes a dead-lettered job for good (an operator handled it by hand).

  KEYS[1] dead-letter set  <base>dead
  KEYS[2] job hash         <base>job:<generation>:<id>

  ARGV[1] job member (`<generation>:<id>`)

  Returns
    1  removed
    0  not in the dead-letter set
]]
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('DEL', KEYS[2])
return 1
