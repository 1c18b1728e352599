--[[
  The sweeper's step for one shard in key format 3: claim-7.lua over the
  packed layout (includes/packed.lua). By the shard's owner only, hands out due
  expiry jobs, then expires the pending holds past their deadline in
  deadline order, from the first buckets of the deadline index, and hands
  those out in the same step while the claim has room. Finally sets the
  shard timer to the earliest deadline left (deletes it when none is left),
  within its grace: no `expired` event is published for a shard claimed on
  time.

  KEYS[1] deadline index   <base>index
  KEYS[2] job queue        <base>jobs
  KEYS[3] claim record     <base>claim:<token>
  KEYS[4] owner record     <base>owner:<format>
  KEYS[5] held jobs        <base>held:<token>
  KEYS[6] dead-letter set  <base>dead
  KEYS[7] event outbox     <base>outbox (written only when ARGV[9] > 0)
  KEYS[8] bucket table     <base>table
  KEYS[9] shard timer      <base>timer

  ARGV[1]..ARGV[9] as claim-7.lua
  ARGV[10] geometry (src/keys.ts packingArg)

  Returns as claim-7.lua:
  { now, expiredCount, nextDue, owns, job1..., job2..., ... }, each
  job 7 entries: member, id, generation, deadline, expiredAt, attempt, payload ('' for none)
]]
-- @include packed-expire.lua
-- @include claim.lua

local base = ARGV[1]

-- The head expireDue leaves behind (false: none left), so the claim's next
-- due time does not read the index again.
local headAfterExpiry

local function earliestDeadline()
  if headAfterExpiry ~= nil then return headAfterExpiry or nil end
  return indexHead(base)
end

-- In deadline order from the first index buckets; each index bucket loses
-- its expired members in one ZREM. Finally the shard timer is set to the
-- earliest deadline left, or deleted when none is left.
local function expireDue(claim)
  local now, limit = claim.now, claim.limit
  local expired = 0
  local geo = geometry(ARGV[10])
  local tbl = readTable(base)
  local examined, position = 0, 0
  while examined < limit do
    local bucket = redis.call('ZRANGE', KEYS[1], position, position, 'WITHSCORES')
    -- Every member of a bucket is at least its bound: past one above now nothing is due.
    if not bucket[1] or tonumber(bucket[2]) > now then break end
    local bucketKey = indexKey(base, bucket[1])
    local due = redis.call('ZRANGEBYSCORE', bucketKey, '-inf', now, 'LIMIT', 0, limit - examined)
    examined = examined + #due
    for _, member in ipairs(due) do
      local r, where, spot
      if string.sub(member, 1, 1) == '#' then
        where = { key = base .. 'pk:' .. string.sub(member, 2) }
        local v = redis.call('GET', where.key)
        if v then
          r = decodeRecord(v)
          spot = holdSpot(geo, r.id)
        end
      else
        spot = holdSpot(geo, member)
        r, where = findHold(base, geo, tbl, spot)
      end
      if r then
        local holder = nil
        if claim.hasRoom() then holder = claim.token end
        local jobMember = expirePacked(base, spot, where, r, now, ARGV[5], KEYS[7], tonumber(ARGV[9]), holder)
        if holder then
          claim.handOut(jobMember, r.id, r.gen, r.deadline, r.payload)
        else
          claim.queue(jobMember)
        end
        expired = expired + 1
      end
    end
    if #due > 0 then redis.call('ZREM', bucketKey, unpack(due)) end
    if redis.call('EXISTS', bucketKey) == 0 then
      redis.call('ZREM', KEYS[1], bucket[1])
    elseif examined < limit then
      -- Nothing more due here: only a bucket with the same bound can still hold some.
      position = position + 1
    end
  end
  local head = indexHead(base)
  if head then setTimer(KEYS[9], 1, math.max(1, head - now)) else redis.call('DEL', KEYS[9]) end
  headAfterExpiry = head or false
  return expired
end

return claimShard(earliestDeadline, expireDue)
