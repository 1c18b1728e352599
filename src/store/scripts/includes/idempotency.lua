-- Idempotency keys: a request sent again with the same Idempotency-Key gets
-- the first reply back instead of acting twice; the same key with another
-- request is refused. The record lives under the order's hash tag and is
-- written by the same script as the change it remembers, so the two can
-- never disagree. `act` is the script's own work; its reply is stored as
-- JSON (small: no payloads) for `ttl` ms.
-- Returns act()'s reply, { 'replay', json } or { 'conflict' }.
local function idempotent(recordKey, fingerprint, ttl, act)
  if fingerprint == '' then return act() end
  local seen = redis.call('HMGET', recordKey, 'f', 'r')
  if seen[1] then
    if seen[1] ~= fingerprint then return { 'conflict' } end
    return { 'replay', seen[2] }
  end
  local reply = act()
  redis.call('HSET', recordKey, 'f', fingerprint, 'r', cjson.encode(reply))
  redis.call('PEXPIRE', recordKey, ttl)
  return reply
end
