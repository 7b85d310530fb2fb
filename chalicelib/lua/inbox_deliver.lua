-- KEYS     none: a group of 10,000 would make 20,000 of them (and a call
--          touches many users' slots anyway); each recipient's keys are
--          named here from the formats keys.py gives (keys.format_of)
-- ARGV[1]  size: entries a window holds at most
-- ARGV[2]  ttl: seconds a window lives after its last write
-- ARGV[3]  budget: bytes a window holds at most
-- ARGV[4]  the entry's JSON after its seq (the seq is spliced in per recipient)
-- ARGV[5]  the recipients' user ids, comma-separated
-- ARGV[6]  their seqs, comma-separated, in the same order
-- ARGV[7]  the format of a user's window (keys.window)
-- ARGV[8]  of a user's live WebSocket connections (keys.connections: connection id -> expiry, ms)
-- ARGV[9]  of a user's wake-up channel (keys.wake_channel)
-- ARGV[10] per recipient, in the same order, comma-separated: the seqs of
--          entries this event makes stale (an edited or deleted message's
--          earlier entries), each list ';'-separated; empty for a new message
-- ARGV[11] the message the event is about ('' for none)
-- ARGV[12] that message's version in the event (messages.version)
-- ARGV[13] '1' when the event changes that message (edit, delete)
-- ARGV[14] the format of a message's change key (keys.changes), ARGV[15] its ttl
-- A window's expiry is pushed back only when the last push (its field 'e',
-- in ms) is a tenth of the ttl old: a window lives at least 0.9 ttl after
-- its last write, and most deliveries save a command per recipient.
-- A change records its version under the message's change key; an entry of
-- the message from an older version, written after it (a delivery that
-- arrived late), would bring back the text the change replaced, so no
-- window gets it (the gap sends reads of that seq to the database).
-- After a commit, for one event: wakes each recipient's long-polls, drops
-- the stale entries and any pending refill's ticket (a refill read before
-- the commit must not land them again), adds the entry to each window that
-- exists (writers never create one), and returns, flat, the position, count
-- and ids of every recipient that has live connections (most have none).
local size, ttl, budget, tail = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3]), ARGV[4]
local refresh_ms = tonumber(ttl) * 100
local superseded = false
if ARGV[11] ~= '' then
  local change_key, version = string.format(ARGV[14], ARGV[11]), tonumber(ARGV[12])
  local last = tonumber(redis.call('GET', change_key) or -1)
  superseded = version < last
  if ARGV[13] == '1' and version > last then redis.call('SET', change_key, version, 'EX', ARGV[15]) end
end
local window_of, connections_of, channel_of = ARGV[7], ARGV[8], ARGV[9]
local seqs, stale = {}, {}
for seq_s in string.gmatch(ARGV[6], '[^,]+') do seqs[#seqs + 1] = seq_s end
for list in string.gmatch(ARGV[10] .. ',', '([^,]*),') do stale[#stale + 1] = list end
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local out, i = {}, 0
for user in string.gmatch(ARGV[5], '[^,]+') do
  i = i + 1
  local seq_s, key = seqs[i], string.format(window_of, user)
  redis.call('PUBLISH', string.format(channel_of, user), seq_s)
  local live = redis.call('ZRANGEBYSCORE', string.format(connections_of, user), now, '+inf')
  if #live > 0 then
    out[#out + 1] = i
    out[#out + 1] = #live
    for _, id in ipairs(live) do out[#out + 1] = id end
  end
  -- m, l, z and t, b: all nil means the window does not exist
  local meta = redis.call('HMGET', key, 'm', 'l', 'z', 't', 'b', 'e')
  if (meta[1] or meta[4] or meta[5]) and stale[i] and stale[i] ~= '' then
    local bytes = tonumber(meta[3] or 0)
    for old in string.gmatch(stale[i], '[^;]+') do
      bytes = bytes - redis.call('HSTRLEN', key, old)
      redis.call('HDEL', key, old)
    end
    redis.call('HDEL', key, 't')
    redis.call('HSET', key, 'z', bytes)
    meta[3], meta[4] = tostring(bytes), nil
  end
  if (meta[1] or meta[4] or meta[5]) and not superseded then
    local seq, newest = tonumber(seq_s), tonumber(meta[1] or 0)
    if seq > newest - size then
      local entry = '{"seq":' .. seq_s .. tail
      local bytes = tonumber(meta[3] or 0) + #entry
      if seq <= newest then bytes = bytes - redis.call('HSTRLEN', key, seq_s) end  -- a replay's
      local low = tonumber(meta[2] or seq)
      if seq < low then low = seq end
      local top = math.max(newest, seq)
      -- seq is at or above the floor, so the size trim never drops it; the
      -- entry, the window's bounds and its expiry mark then go in one HSET.
      low, bytes = trim_to_size(key, low, newest, top, size, bytes)
      local pushed = tonumber(meta[6] or 0)
      if now - pushed >= refresh_ms then pushed = now end
      redis.call('HSET', key, seq_s, entry, 'm', top, 'l', low, 'z', bytes, 'e', pushed)
      if bytes > budget then
        low, bytes = trim_to_budget(key, low, top, budget, bytes)
        redis.call('HSET', key, 'l', low, 'z', bytes)
      end
      if pushed == now then redis.call('EXPIRE', key, ttl) end
    end
  end
end
return out
