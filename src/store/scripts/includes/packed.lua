-- Key format 3: pending holds packed into small listpack structures of the
-- shard (docs/keys.md). Every key is built from the shard base, so it is in
-- the slot of the declared keys.
--
--  <base>table        HASH: linear hashing level `l`, split pointer `s`,
--                     pending holds `n`, index buckets made so far `ic`
--  <base>b:<i>[.<k>]  HASH bucket i of the pending holds (k > 0: its
--                     chain, used only when bucket i is full or the field
--                     is taken by another id): field = fingerprint of the
--                     id, value = the packed record, which holds the id
--  <base>pk:<h>       STRING: the packed record of a hold whose id is too
--                     long for a bucket (h: 20 hex digits of SHA-1 of the id)
--  <base>pl:<id>      STRING: a payload too long to fit the bucket value
--  <base>index        ZSET of deadline index buckets: member bucket number,
--                     score its lower bound
--  <base>i:<n>        ZSET index bucket n: member id ('#<h>' for a long id),
--                     score deadline
--  <base>timer        STRING expiring at the earliest deadline + grace
--
-- No structure is let past a listpack limit (Redis 7.0 never converts a
-- hashtable or skiplist back): the limits come in one ARGV (`geometry`).
-- @include now.lua
-- @include wake.lua
-- @include timer.lua
-- @include order-record.lua

-- deadline (6 bytes), deadline - createdAt (5, signed), generation (5),
-- payload flag, id length
local RECORD_HEADER = '>I6i5I5BB'
local RECORD_HEADER_LEN = 18
local PAYLOAD_NONE, PAYLOAD_INLINE, PAYLOAD_KEY = 0, 1, 2

local function geometry(arg)
  local g = {}
  for n in string.gmatch(arg, '%d+') do g[#g + 1] = tonumber(n) end
  local hashEntries = g[1]
  return {
    hashEntries = hashEntries, hashValue = g[2], zsetEntries = math.min(g[3], 128), zsetValue = g[4],
    fpChars = g[5],
    -- holds per bucket on average before the next bucket splits: about 40 of 128
    load = math.max(1, math.floor(hashEntries * 5 / 16))
  }
end

-- Where a hold of `id` lives: computed from the id alone.
local function holdSpot(geo, id)
  local hex = redis.sha1hex(id)
  local long = #id + RECORD_HEADER_LEN > geo.hashValue or #id > geo.zsetValue
  return {
    id = id, long = long,
    hash = tonumber(string.sub(hex, 1, 8), 16),
    fp = string.sub(hex, 9, 8 + geo.fpChars),
    short = string.sub(hex, 1, 20)
  }
end

-- What a script on one hold starts with: the geometry (its ARGV), the
-- server time and where `id` lives.
local function openHold(geoArg, id)
  local geo = geometry(geoArg)
  return geo, nowMs(), holdSpot(geo, id)
end

local function indexMember(spot)
  if spot.long then return '#' .. spot.short end
  return spot.id
end

local function encodeRecord(r)
  local head = struct.pack(RECORD_HEADER, r.deadline, r.deadline - r.created, r.gen, r.flag, #r.id)
  if r.flag == PAYLOAD_INLINE then return head .. r.id .. r.payload end
  return head .. r.id
end

local function decodeRecord(v)
  local deadline, age, gen, flag, idLen = struct.unpack(RECORD_HEADER, v)
  local r = {
    deadline = deadline, created = deadline - age, gen = gen, flag = flag,
    id = string.sub(v, RECORD_HEADER_LEN + 1, RECORD_HEADER_LEN + idLen)
  }
  if flag == PAYLOAD_INLINE then r.payload = string.sub(v, RECORD_HEADER_LEN + idLen + 1) end
  return r
end

local function readTable(base)
  local m = redis.call('HMGET', base .. 'table', 'l', 's')
  return { l = tonumber(m[1]) or 0, s = tonumber(m[2]) or 0 }
end

local function bucketOf(tbl, hash)
  local size = 2 ^ tbl.l
  local b = hash % size
  if b < tbl.s then b = hash % (size * 2) end
  return b
end

local function chainKey(base, b, k)
  if k == 0 then return base .. 'b:' .. b end
  return base .. 'b:' .. b .. '.' .. k
end

local function longKey(base, spot)
  return base .. 'pk:' .. spot.short
end

-- The pending hold of spot.id: its record (payload resolved) and where it is,
-- or nil. One HGET for a hold found in its bucket.
local function findHold(base, geo, tbl, spot)
  if spot.long then
    local key = longKey(base, spot)
    local v = redis.call('GET', key)
    if not v then return nil end
    local r = decodeRecord(v)
    if r.id ~= spot.id then return nil end
    return r, { key = key }
  end
  local b = bucketOf(tbl, spot.hash)
  local k = 0
  while true do
    local key = chainKey(base, b, k)
    local v = redis.call('HGET', key, spot.fp)
    if v then
      local r = decodeRecord(v)
      if r.id == spot.id then return r, { key = key, b = b, k = k } end
    end
    k = k + 1
    if redis.call('EXISTS', chainKey(base, b, k)) == 0 then return nil end
  end
end

local function loadPayload(base, r)
  if r.flag == PAYLOAD_KEY then r.payload = redis.call('GET', base .. 'pl:' .. r.id) end
  return r.payload
end

-- Puts a packed value into bucket b: the first key of its chain that has
-- room and no entry under this fingerprint.
local function bucketPut(base, geo, b, fp, value)
  local k = 0
  while true do
    local key = chainKey(base, b, k)
    if redis.call('HEXISTS', key, fp) == 0 and redis.call('HLEN', key) < geo.hashEntries then
      redis.call('HSET', key, fp, value)
      return
    end
    k = k + 1
  end
end

-- Splits the next bucket of the linear hash: its holds are spread over it and
-- a new bucket. Bounded: one bucket's holds (about 2 x load).
local function splitNext(base, geo, tbl)
  local size = 2 ^ tbl.l
  local from = tbl.s
  local values = {}
  local k = 0
  while true do
    local key = chainKey(base, from, k)
    local flat = redis.call('HGETALL', key)
    if #flat == 0 then break end
    for i = 2, #flat, 2 do values[#values + 1] = flat[i] end
    redis.call('DEL', key)
    k = k + 1
  end
  tbl.s = tbl.s + 1
  if tbl.s == size then
    tbl.l = tbl.l + 1
    tbl.s = 0
  end
  redis.call('HSET', base .. 'table', 'l', tbl.l, 's', tbl.s)
  -- Both buckets are empty now: their chains are laid out here and written
  -- with one HSET per key.
  local chains = {}
  for _, v in ipairs(values) do
    local spot = holdSpot(geo, decodeRecord(v).id)
    local b = bucketOf(tbl, spot.hash)
    chains[b] = chains[b] or {}
    local chain = chains[b]
    local c = 1
    while chain[c] and (chain[c].fields[spot.fp] or chain[c].count >= geo.hashEntries) do c = c + 1 end
    chain[c] = chain[c] or { fields = {}, count = 0, args = {} }
    local slot = chain[c]
    slot.fields[spot.fp] = true
    slot.count = slot.count + 1
    slot.args[#slot.args + 1] = spot.fp
    slot.args[#slot.args + 1] = v
  end
  for b, chain in pairs(chains) do
    for c, slot in ipairs(chain) do redis.call('HSET', chainKey(base, b, c - 1), unpack(slot.args)) end
  end
end

-- Writes the record of a hold that is not stored yet (a new hold).
local function storeNewHold(base, geo, tbl, spot, r)
  local payload = r.payload
  r.flag = payload and PAYLOAD_INLINE or PAYLOAD_NONE
  if spot.long then
    redis.call('SET', longKey(base, spot), encodeRecord(r))
  else
    local value = encodeRecord(r)
    if #value > geo.hashValue then
      r.flag = PAYLOAD_KEY
      redis.call('SET', base .. 'pl:' .. spot.id, payload)
      value = encodeRecord(r)
    end
    bucketPut(base, geo, bucketOf(tbl, spot.hash), spot.fp, value)
  end
  local n = redis.call('HINCRBY', base .. 'table', 'n', 1)
  if not spot.long and n > geo.load * (2 ^ tbl.l + tbl.s) then splitNext(base, geo, tbl) end
end

-- Rewrites a stored record in place (a new deadline): same length, same place.
local function rewriteHold(spot, where, r)
  if where.b then
    redis.call('HSET', where.key, spot.fp, encodeRecord(r))
  else
    redis.call('SET', where.key, encodeRecord(r))
  end
end

-- Removes a stored record (and its payload key). A bucket key left empty
-- is replaced by the last key of its chain, so a chain has no holes.
local function dropHold(base, spot, where, r)
  if r.flag == PAYLOAD_KEY then redis.call('DEL', base .. 'pl:' .. r.id) end
  redis.call('HINCRBY', base .. 'table', 'n', -1)
  if not where.b then
    redis.call('DEL', where.key)
    return
  end
  redis.call('HDEL', where.key, spot.fp)
  if redis.call('EXISTS', where.key) == 1 then return end
  local last = where.k
  while redis.call('EXISTS', chainKey(base, where.b, last + 1)) == 1 do last = last + 1 end
  if last > where.k then redis.call('RENAME', chainKey(base, where.b, last), where.key) end
end

-- The deadline index: buckets of at most zsetEntries members, each under
-- the greatest lower bound <= its deadlines; every member of a bucket is at
-- most the bound of the next one, so the index reads in deadline order.
local function indexKey(base, n)
  return base .. 'i:' .. n
end

-- The earliest deadline in the index, or nil.
local function indexHead(base)
  local first = redis.call('ZRANGE', base .. 'index', 0, 0)
  if not first[1] then return nil end
  local head = redis.call('ZRANGE', indexKey(base, first[1]), 0, 0, 'WITHSCORES')
  return tonumber(head[2])
end

-- Moves the upper part of a full index bucket to a new bucket, cut at a
-- change of deadline nearest the middle (in the middle if all are equal).
-- Returns the bucket `deadline` goes to.
local function splitIndexBucket(base, n, key, deadline)
  local all = redis.call('ZRANGE', key, 0, -1, 'WITHSCORES')
  local count = #all / 2
  local function score(i) return tonumber(all[2 * i + 2]) end
  local mid = math.floor(count / 2)
  local cut = mid
  for delta = 0, count do
    local lo, hi = mid - delta, mid + delta
    if lo >= 1 and score(lo - 1) ~= score(lo) then cut = lo break end
    if hi >= 1 and hi < count and score(hi - 1) ~= score(hi) then cut = hi break end
    if lo < 1 and hi >= count then break end
  end
  local bound = score(cut)
  local upper = tostring(redis.call('HINCRBY', base .. 'table', 'ic', 1))
  local moved, removed = {}, {}
  for i = cut, count - 1 do
    moved[#moved + 1] = all[2 * i + 2]
    moved[#moved + 1] = all[2 * i + 1]
    removed[#removed + 1] = all[2 * i + 1]
  end
  redis.call('ZREM', key, unpack(removed))
  redis.call('ZADD', indexKey(base, upper), unpack(moved))
  redis.call('ZADD', base .. 'index', bound, upper)
  if deadline >= bound then return upper end
  return n
end

local function indexAdd(base, geo, member, deadline)
  local top = base .. 'index'
  local n = redis.call('ZREVRANGEBYSCORE', top, deadline, '-inf', 'LIMIT', 0, 1)[1]
  if not n then
    n = redis.call('ZRANGE', top, 0, 0)[1] or tostring(redis.call('HINCRBY', base .. 'table', 'ic', 1))
    redis.call('ZADD', top, deadline, n) -- the first bucket's bound comes down to this deadline
  end
  local key = indexKey(base, n)
  if redis.call('ZCARD', key) >= geo.zsetEntries then
    key = indexKey(base, splitIndexBucket(base, n, key, deadline))
  end
  redis.call('ZADD', key, deadline, member)
end

-- Removes a member from the bucket its deadline puts it in: the greatest
-- bound below the deadline, or one of the buckets whose bound equals it.
local function indexRemove(base, member, deadline)
  local top = base .. 'index'
  local offset = 0
  while true do
    local page = redis.call('ZREVRANGEBYSCORE', top, deadline, '-inf', 'WITHSCORES', 'LIMIT', offset, 8)
    if #page == 0 then return 0 end
    for i = 1, #page, 2 do
      local key = indexKey(base, page[i])
      if redis.call('ZREM', key, member) == 1 then
        if redis.call('EXISTS', key) == 0 then redis.call('ZREM', top, page[i]) end
        return 1
      end
      if tonumber(page[i + 1]) < deadline then return 0 end
    end
    offset = offset + 8
  end
end

-- Arms the shard's timer key for `deadline` (+ grace), and wakes the workers.
local function newEarliest(base, deadline, now)
  setTimer(base .. 'timer', 1, math.max(1, deadline - now))
  wake(base, deadline)
end

-- Indexes a hold and, when it is now the shard's earliest, arms the timer.
local function indexHold(base, geo, spot, deadline, now)
  local head = indexHead(base)
  indexAdd(base, geo, indexMember(spot), deadline)
  if not head or deadline < head then newEarliest(base, deadline, now) end
end

-- The order record of an ended hold: the fields formats 1 and 2 keep in
-- the order hash, in one packed string (order-record.lua), which acks,
-- retries and dead letters update through the same functions. `outcome`:
-- the handler outcome (`pending` for an expired hold), nil for none.
local function writeEndedOrder(base, r, status, now, retentionMs, outcome)
  writeEndedRecord(base .. 'order:' .. r.id, {
    g = r.gen, s = status, c = r.created, d = r.deadline, t = now, h = outcome, p = r.payload
  }, retentionMs)
end
