--[[
  Creates a hold in key format 3 (docs/keys.md, includes/packed.lua): a new
  generation of the order, its packed record in the shard's buckets and its
  entry in the deadline index, atomically. Generations come from the shard's
  counter as in create-7.lua: never reused, never those of a job that still
  exists.

  KEYS[1] bucket table       <base>table
  KEYS[2] deadline index     <base>index
  KEYS[3] job queue          <base>jobs   (written when a lapsed hold is expired first)
  KEYS[4] hold counter       <base>holds
  KEYS[5] order hash         <base>order:<id> (an ended hold; deleted by the new one)
  KEYS[6] shard timer        <base>timer
  KEYS[7] event outbox       <base>outbox (written only when ARGV[7] > 0)
  KEYS[8] idempotency record <base>idem:<id>:<key hash> (`<base>idem:` when the request has no key)

  ARGV[1] base (`<prefix>{<tag>}:`)
  ARGV[2] order id
  ARGV[3] ttl in ms
  ARGV[4] payload JSON, '' for none
  ARGV[5] result retention in ms
  ARGV[6] geometry: the listpack limits (src/keys.ts packingArg)
  ARGV[7] outbox cap: 0 when events are off, else the approximate MAXLEN of the outbox
  ARGV[8] request fingerprint, '' when the request has no Idempotency-Key
  ARGV[9] idempotency record ttl in ms

  A hold that is now the shard's earliest deadline sets the shard timer and
  is published on `<prefix>due` (wake.lua). Events as create-7.lua.

  Returns
   { 1, generation, createdAt, deadline }  created
   { -1, remainingMs }                     CHECKOUT_EXISTS: the id is held
   { 'replay', json, payload }             the same Idempotency-Key and request again (see create-7.lua)
   { 'conflict' }                          IDEMPOTENCY_KEY_REUSED
]]
-- @include packed-expire.lua
-- @include idempotency.lua
-- @include new-hold.lua

local function act()
  local base, id, ttl = ARGV[1], ARGV[2], tonumber(ARGV[3])
  local geo, now, spot = openHold(ARGV[6], id)
  local tbl = readTable(base)
  local r, where = findHold(base, geo, tbl, spot)
  if r then
    if r.deadline > now then return { -1, r.deadline - now } end
    expireLapsed(base, spot, where, r, now, ARGV[5], KEYS[7], tonumber(ARGV[7]))
    tbl = readTable(base)
  end

  local gen = newGeneration(KEYS[4], base, id, tonumber(orderGet(KEYS[5], 'g')[1]) or 0)

  local deadline = now + ttl
  redis.call('DEL', KEYS[5])
  local payload = nil
  if ARGV[4] ~= '' then payload = ARGV[4] end
  storeNewHold(base, geo, tbl, spot, { id = id, gen = gen, created = now, deadline = deadline, payload = payload })
  indexHold(base, geo, spot, deadline, now)
  recordCreated(KEYS[7], tonumber(ARGV[7]), id, gen, now, deadline, ttl, ARGV[4])
  return { 1, gen, now, deadline }
end

return idempotent(KEYS[8], ARGV[8], ARGV[9], act, ARGV[4])
