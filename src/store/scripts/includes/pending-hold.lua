-- @include expire-order.lua
-- @include order-record.lua

-- Reads a hold that must still be pending, for the scripts that change one.
-- Returns its fields { status, deadline, generation, payload, createdAt },
-- or nil and the refusal to return as-is: { -2 } unknown id,
-- { -3, status } no longer pending. A hold past its deadline is expired
-- here first (with its `expired` event when outboxCap > 0), so the caller
-- can never act on a hold that has run out.
local function pendingHold(orderKey, base, id, now, retentionMs, outboxKey, outboxCap)
  local cur = orderGet(orderKey, 's', 'd', 'g', 'p', 'c')
  if not cur[1] then return nil, { -2 } end
  if cur[1] ~= 'pending' then return nil, { -3, cur[1] } end
  if tonumber(cur[2]) <= now then
    expireOrder(base, id, cur[3], tonumber(cur[2]), cur[4], now, retentionMs, outboxKey, outboxCap)
    return nil, { -3, 'expired' }
  end
  return cur
end
