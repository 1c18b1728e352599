--[[
  Takes ownership of a shard for a worker, or keeps it, and releases the
  jobs that gone workers (reaped or left, includes/members.lua) still hold
  in the shard. The owner record names the owner and its epoch; the epoch
  grows by one at each change of owner, and a claim names the epoch it
  believes in (claim.lua), so a worker that lost the shard can never claim
  there again, however late its call arrives. Taking over from a live owner
  is allowed: the member list decides who owns what, and the jobs the
  previous owner holds stay its own (fenced by holder and attempt).

  KEYS[1] owner record  <base>owner:<format>  ('<epoch>:<token>', token empty when none)
  KEYS[2] job queue     <base>jobs
  KEYS[3] reaping       <base>reaping

  ARGV[1] base
  ARGV[2] worker token
  ARGV[3..] tokens of gone workers

  Returns { epoch, released, reaping }
    epoch: this worker's epoch as owner of the shard
    released: jobs of gone workers made due by this call (at most REAP_BATCH, workers.lua)
    reaping: gone workers whose jobs here are still to be released (by the next calls)
]]
-- @include workers.lua

local base, token = ARGV[1], ARGV[2]
local record = redis.call('GET', KEYS[1]) or '0:'
local colon = string.find(record, ':', 1, true)
local epoch, owner = tonumber(string.sub(record, 1, colon - 1)), string.sub(record, colon + 1)
if owner ~= token then
  epoch = epoch + 1
  redis.call('SET', KEYS[1], epoch .. ':' .. token)
end
for i = 3, #ARGV do
  if redis.call('EXISTS', base .. 'held:' .. ARGV[i]) == 1 then redis.call('SADD', KEYS[3], ARGV[i]) end
end
local released, reaping = releaseReaped(base, KEYS[3], KEYS[2])
return { epoch, released, reaping }
