--[[
  A stopping worker leaves its layout's membership, in two steps. 'drain':
  it stays a live member (its beats go on, so the jobs it still runs stay
  its own) but takes no shard any more: its beat number gets a half (.5),
  which every worker's assignment skips, so its shards go to the others at
  once. 'leave', once it has given back what it held: it is marked gone
  (includes/members.lua), and the owners release anything it could not give
  back itself.

  KEYS[1] members  <prefix>{workers}:members:<format>

  ARGV[1] worker token
  ARGV[2] due channel <prefix>due
  ARGV[3] 'drain' or 'leave'

  Returns 1 if the worker was a live member, 0 if not (already gone)
]]
-- @include members.lua

local score = tonumber(redis.call('ZSCORE', KEYS[1], ARGV[1]))
if not score or score <= 0 then return 0 end
if ARGV[3] == 'drain' then
  if score % 1 == 0 then redis.call('ZINCRBY', KEYS[1], 0.5, ARGV[1]) end
else
  markGone(KEYS[1], ARGV[1])
end
announce(ARGV[2])
return 1
