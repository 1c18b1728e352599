-- Idempotency keys: a request sent again with the same Idempotency-Key gets
-- the first reply back instead of acting twice; the same key with another
-- request is refused. The record lives under the order's hash tag and is
-- written by the same script as the change it remembers, so the two can
-- never disagree. `act` is the script's own work; its reply is stored as
-- JSON for `ttl` ms. `kept` (optional, '' for none) is request text the
-- reply does not carry but a replay must answer as the first request sent
-- it (create's payload, whose key order the fingerprint ignores): stored
-- beside a successful reply (first element 1).
-- Returns act()'s reply, { 'replay', json, kept or nil } or { 'conflict' }.
local function idempotent(recordKey, fingerprint, ttl, act, kept)
  if fingerprint == '' then return act() end
  local seen = redis.call('HMGET', recordKey, 'f', 'r', 'k')
  if seen[1] then
    if seen[1] ~= fingerprint then return { 'conflict' } end
    return { 'replay', seen[2], seen[3] }
  end
  local reply = act()
  redis.call('HSET', recordKey, 'f', fingerprint, 'r', cjson.encode(reply))
  if kept and kept ~= '' and reply[1] == 1 then redis.call('HSET', recordKey, 'k', kept) end
  redis.call('PEXPIRE', recordKey, ttl)
  return reply
end
