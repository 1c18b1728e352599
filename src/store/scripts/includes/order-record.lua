-- An order's record, `<base>order:<id>`: a HASH in formats 1 and 2, one
-- packed STRING for an ended hold of format 3 (docs/keys.md), the same
-- fields either way. Every script that reads or updates an order's fields
-- goes through these functions, so either form works wherever it is met
-- (formats 2 and 3 share key names while a prefix migrates).
--
-- The string: a header of fixed width (format byte, deadline, deadline -
-- createdAt, endedAt - deadline, generation, status and outcome codes),
-- then any other field as <name length><name><value length><value>.
local ENDED_HEADER = '>BI6i5i6I5BB'
local ENDED_HEADER_LEN = 25
local ENDED_FORMAT = 1
local STATUS_CODES = { expired = 1, completed = 2, cancelled = 3 }
local OUTCOME_CODES = { pending = 1, handled = 2, retrying = 3, dead = 4 }
local STATUS_NAMES = { 'expired', 'completed', 'cancelled' }
local OUTCOME_NAMES = { 'pending', 'handled', 'retrying', 'dead' }
local HEADER_FIELDS = { g = true, s = true, c = true, d = true, t = true, h = true }

-- f: field name -> value (g, s, c, d and t required).
local function encodeEnded(f)
  local s, h = STATUS_CODES[f.s], OUTCOME_CODES[f.h] or 0
  local d = tonumber(f.d)
  local parts = { struct.pack(ENDED_HEADER, ENDED_FORMAT, d, d - tonumber(f.c), tonumber(f.t) - d, tonumber(f.g), s, h) }
  local names = {}
  for name in pairs(f) do
    if not HEADER_FIELDS[name] or (name == 'h' and h == 0) then names[#names + 1] = name end
  end
  table.sort(names)
  for _, name in ipairs(names) do
    local value = tostring(f[name])
    parts[#parts + 1] = string.char(#name) .. name .. struct.pack('>I4', #value) .. value
  end
  return table.concat(parts)
end

local function decodeEnded(v)
  local _, d, age, ended, g, s, h = struct.unpack(ENDED_HEADER, v)
  local f = { g = tostring(g), s = STATUS_NAMES[s], c = tostring(d - age), d = tostring(d), t = tostring(d + ended) }
  if h > 0 then f.h = OUTCOME_NAMES[h] end
  local i = ENDED_HEADER_LEN + 1
  while i <= #v do
    local nameLen = string.byte(v, i)
    local name = string.sub(v, i + 1, i + nameLen)
    local valueLen = struct.unpack('>I4', v, i + 1 + nameLen)
    local from = i + 5 + nameLen
    f[name] = string.sub(v, from, from + valueLen - 1)
    i = from + valueLen
  end
  return f
end

-- Writes the packed record of an ended format 3 hold, kept for the retention.
local function writeEndedRecord(key, f, retentionMs)
  redis.call('SET', key, encodeEnded(f), 'PX', retentionMs)
end

-- Runs a hash command on the order record; nil when the record is the
-- packed string (WRONGTYPE), so hashes cost no extra command.
local function onHash(...)
  local reply = redis.pcall(...)
  if type(reply) ~= 'table' or not reply.err then return reply end
  if string.find(reply.err, 'WRONGTYPE', 1, true) then return nil end
  error(reply)
end

-- Fields of the order, as HMGET gives them: one value per name, false
-- when absent (all false when there is no record).
local function orderGet(key, ...)
  local values = onHash('HMGET', key, ...)
  if values then return values end
  local f = decodeEnded(redis.call('GET', key))
  local out = {}
  for i, name in ipairs({ ... }) do out[i] = f[name] or false end
  return out
end

-- Every field of the order as HGETALL gives them: { name1, value1, ... }.
local function orderGetAll(key)
  local flat = onHash('HGETALL', key)
  if flat then return flat end
  flat = {}
  for name, value in pairs(decodeEnded(redis.call('GET', key))) do
    flat[#flat + 1] = name
    flat[#flat + 1] = value
  end
  return flat
end

-- Sets fields of an existing order record: name1, value1, ...; its TTL stays.
local function orderUpdate(key, ...)
  if onHash('HSET', key, ...) then return end
  local f = decodeEnded(redis.call('GET', key))
  local args = { ... }
  for i = 1, #args, 2 do f[args[i]] = args[i + 1] end
  redis.call('SET', key, encodeEnded(f), 'KEEPTTL')
end
