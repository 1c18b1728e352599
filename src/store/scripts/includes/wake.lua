-- Tells the workers that something in this shard is due at `due` (server ms):
-- PUBLISH <prefix>due '<base> <due>'. Workers sleep until the earliest due
-- time they know of; this is what wakes them for a new, earlier one without
-- polling.
local function wake(base, due)
  local brace = string.find(base, '{', 1, true)
  redis.call('PUBLISH', string.sub(base, 1, brace - 1) .. 'due', base .. ' ' .. due)
end

-- Wakes the workers only when the member just written is the head of its
-- sorted set (the shard's earliest deadline or job): nothing is published
-- while the head stays the same, as with holds of equal length.
local function wakeIfFirst(zsetKey, member, due, base)
  local head = redis.call('ZRANGE', zsetKey, 0, 0)
  if head[1] == member then wake(base, due) end
end
