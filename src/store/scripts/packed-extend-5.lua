--[[
  Moves the deadline of a pending hold of key format 3 to now + ttl: its
  record and its deadline index entry together.

  KEYS[1] bucket table       <base>table
  KEYS[2] deadline index     <base>index
  KEYS[3] shard timer        <base>timer
  KEYS[4] event outbox       <base>outbox (written only when ARGV[6] > 0)
  KEYS[5] idempotency record <base>idem:<id>:<key hash> (`<base>idem:` when the request has no key)

  ARGV[1] base
  ARGV[2] order id
  ARGV[3] new ttl in ms
  ARGV[4] result retention in ms
  ARGV[5] geometry (src/keys.ts packingArg)
  ARGV[6] outbox cap
  ARGV[7] request fingerprint, '' when the request has no Idempotency-Key
  ARGV[8] idempotency record ttl in ms

  A deadline that is now the shard's earliest sets the shard timer and is
  published on `<prefix>due`. Events and returns as extend-6.lua:
   { 1, now, deadline, generation, createdAt }  moved
   { -2 }                CHECKOUT_NOT_FOUND
   { -3, status }        CHECKOUT_NOT_PENDING
   { 'replay', json }    the same Idempotency-Key and request again
   { 'conflict' }        IDEMPOTENCY_KEY_REUSED
]]
-- @include packed-expire.lua
-- @include idempotency.lua

local function act()
  local base, id, ttl = ARGV[1], ARGV[2], tonumber(ARGV[3])
  local geo, now, spot = openHold(ARGV[5], id)
  local r, where, refusal = packedPendingHold(base, geo, spot, now, ARGV[4], KEYS[4], tonumber(ARGV[6]))
  if not r then return refusal end

  local deadline = now + ttl
  indexRemove(base, indexMember(spot), r.deadline)
  r.deadline = deadline
  rewriteHold(spot, where, r)
  indexHold(base, geo, spot, deadline, now)
  recordEvent(KEYS[4], tonumber(ARGV[6]), { 't', 'extended', 'i', id, 'g', r.gen, 'at', now, 'd', deadline, 'ttl', ttl })
  return { 1, now, deadline, r.gen, r.created }
end

return idempotent(KEYS[5], ARGV[7], ARGV[8], act)
