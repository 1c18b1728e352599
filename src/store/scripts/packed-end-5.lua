--[[
  Ends a pending hold of key format 3 by completion or cancellation,
  atomically against the expiry as end-6.lua: a hold past its deadline is
  expired here instead.

  KEYS[1] bucket table       <base>table
  KEYS[2] deadline index     <base>index
  KEYS[3] order hash         <base>order:<id>
  KEYS[4] event outbox       <base>outbox (written only when ARGV[6] > 0)
  KEYS[5] idempotency record <base>idem:<id>:<key hash> (`<base>idem:` when the request has no key)

  ARGV[1] base
  ARGV[2] order id
  ARGV[3] new status: 'completed' or 'cancelled'
  ARGV[4] result retention in ms
  ARGV[5] geometry (src/keys.ts packingArg)
  ARGV[6] outbox cap
  ARGV[7] request fingerprint, '' when the request has no Idempotency-Key
  ARGV[8] idempotency record ttl in ms

  Events as end-6.lua. Returns as end-6.lua:
   { 1, endedAt, generation }     ended with ARGV[3] now
   { 1, endedAt, generation, 1 }  ended with ARGV[3] by an earlier call
   { -2 }                         CHECKOUT_NOT_FOUND
   { -3, status }                 CHECKOUT_NOT_PENDING
   { 'replay', json }             the same Idempotency-Key and request again
   { 'conflict' }                 IDEMPOTENCY_KEY_REUSED
]]
-- @include packed-expire.lua
-- @include idempotency.lua

local function act()
  local base, id = ARGV[1], ARGV[2]
  local geo, now, spot = openHold(ARGV[5], id)
  local r, where, refusal = packedPendingHold(base, geo, spot, now, ARGV[4], KEYS[4], tonumber(ARGV[6]))
  if not r then
    if refusal[1] == -3 and refusal[2] == ARGV[3] then
      local ended = orderGet(KEYS[3], 't', 'g')
      return { 1, tonumber(ended[1]), tonumber(ended[2]), 1 }
    end
    return refusal
  end
  loadPayload(base, r)
  dropHold(base, spot, where, r)
  indexRemove(base, indexMember(spot), r.deadline)
  writeEndedOrder(base, r, ARGV[3], now, ARGV[4], nil)
  recordEvent(KEYS[4], tonumber(ARGV[6]), { 't', ARGV[3], 'i', id, 'g', r.gen, 'at', now })
  return { 1, now, r.gen }
end

return idempotent(KEYS[5], ARGV[7], ARGV[8], act)
