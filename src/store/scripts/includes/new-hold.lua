-- What create-7.lua and packed-create-8.lua share around a new hold.
-- @include outbox.lua

-- The generation of a new hold of `id`: the next of the shard's counter,
-- above `previous` (the last one of this id, even one written before the
-- counter existed) and none whose expiry job still exists.
local function newGeneration(counterKey, base, id, previous)
  local gen = redis.call('INCR', counterKey)
  if gen <= previous then
    gen = previous + 1
    redis.call('SET', counterKey, gen)
  end
  while redis.call('EXISTS', base .. 'job:' .. gen .. ':' .. id) == 1 do
    gen = redis.call('INCR', counterKey)
  end
  return gen
end

-- The `created` event of a new hold (events on when outboxCap > 0).
local function recordCreated(outboxKey, outboxCap, id, gen, now, deadline, ttl, payload)
  recordEvent(outboxKey, outboxCap, {
    't', 'created', 'i', id, 'g', gen, 'at', now, 'd', deadline, 'ttl', ttl, 'pb', #payload
  })
end
