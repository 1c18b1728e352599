-- @include packed.lua
-- @include expire-order.lua

-- Records that a packed pending hold ran out: it leaves its bucket, its
-- order record is written `expired` (as in formats 1 and 2) and its expiry
-- job is queued, or handed to `holder` as attempt 1. The caller removes it
-- from the deadline index (indexRemove, or in one ZREM per index bucket).
-- Returns the job member `<generation>:<id>`.
local function expirePacked(base, spot, where, r, now, retentionMs, outboxKey, outboxCap, holder)
  local payload = loadPayload(base, r)
  dropHold(base, spot, where, r)
  writeEndedOrder(base, r, 'expired', now, retentionMs, 'pending')
  recordExpired(outboxKey, outboxCap, r.id, r.gen, r.deadline, payload, now)
  local member = r.gen .. ':' .. r.id
  writeJob(base .. 'job:' .. member, r.id, r.gen, r.deadline, payload, now, holder)
  return member
end

-- Expires a hold a request found past its deadline before any worker did:
-- its job waits in the queue, and it leaves the deadline index here.
local function expireLapsed(base, spot, where, r, now, retentionMs, outboxKey, outboxCap)
  expirePacked(base, spot, where, r, now, retentionMs, outboxKey, outboxCap)
  redis.call('ZADD', base .. 'jobs', now, r.gen .. ':' .. r.id)
  indexRemove(base, indexMember(spot), r.deadline)
end

-- Reads a hold that must still be pending, for the scripts that change one
-- (the format 3 side of pending-hold.lua). Returns its record and where it
-- is, or nil and the refusal to return as-is: { -2 } unknown id,
-- { -3, status } no longer pending. A hold past its deadline is expired
-- here first, so the caller can never act on a hold that has run out.
local function packedPendingHold(base, geo, spot, now, retentionMs, outboxKey, outboxCap)
  local r, where = findHold(base, geo, readTable(base), spot)
  if not r then
    local status = orderGet(base .. 'order:' .. spot.id, 's')[1]
    if not status then return nil, nil, { -2 } end
    return nil, nil, { -3, status }
  end
  if r.deadline <= now then
    expireLapsed(base, spot, where, r, now, retentionMs, outboxKey, outboxCap)
    return nil, nil, { -3, 'expired' }
  end
  return r, where
end
