-- The transactional outbox of lifecycle events (docs/events.md). A script
-- that changes an order appends the event to its shard's outbox in the same
-- atomic step, so no event is lost to a crash between the change and its
-- event; the worker's relay copies the outbox to the events stream.
-- `cap` is 0 when events are off; otherwise the outbox is trimmed to about
-- that many entries, a safety bound that only bites while no relay runs.
-- Entries are compact (times in ms); the relay turns them into the
-- published schema (src/events/schema.ts).
local function recordEvent(outboxKey, cap, fields)
  if cap <= 0 then return end
  redis.call('XADD', outboxKey, 'MAXLEN', '~', cap, '*', unpack(fields))
end
