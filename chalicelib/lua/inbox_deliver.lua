-- KEYS     per recipient, in order: its window (keys.window) and its live
--          WebSocket connections (keys.connections: connection id -> expiry, ms)
-- ARGV[1]  size: entries a window holds at most
-- ARGV[2]  ttl: seconds a window lives after its last write
-- ARGV[3]  budget: bytes a window holds at most
-- ARGV[4]  the entry's JSON after its seq (the seq is spliced in per recipient)
-- ARGV[5]  the recipients' seqs, comma-separated, in KEYS order
-- ARGV[6]  the recipients' wake-up channels (keys.wake_channel), comma-separated, in KEYS order
-- After a commit, for one message: wakes each recipient's long-polls, adds
-- the entry to each window that exists (writers never create one), and
-- returns, flat, the position, count and ids of every recipient that has
-- live connections (most have none).
local size, ttl, budget, tail = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3]), ARGV[4]
local channels = {}
for channel in string.gmatch(ARGV[6], '[^,]+') do channels[#channels + 1] = channel end
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local out, i = {}, 0
for seq_s in string.gmatch(ARGV[5], '[^,]+') do
  i = i + 1
  local key = KEYS[2 * i - 1]
  redis.call('PUBLISH', channels[i], seq_s)
  local live = redis.call('ZRANGEBYSCORE', KEYS[2 * i], now, '+inf')
  if #live > 0 then
    out[#out + 1] = i
    out[#out + 1] = #live
    for _, id in ipairs(live) do out[#out + 1] = id end
  end
  -- m, l, z and t, b: all nil means the window does not exist
  local meta = redis.call('HMGET', key, 'm', 'l', 'z', 't', 'b')
  if meta[1] or meta[4] or meta[5] then
    local seq, newest = tonumber(seq_s), tonumber(meta[1] or 0)
    if seq > newest - size then
      local entry = '{"seq":' .. seq_s .. tail
      local bytes = tonumber(meta[3] or 0) + #entry - redis.call('HSTRLEN', key, seq_s)
      local low = tonumber(meta[2] or seq)
      if seq < low then low = seq end
      local top = math.max(newest, seq)
      -- seq is at or above the floor, so the size trim never drops it; the
      -- entry and the window's bounds then go in one HSET.
      low, bytes = trim_to_size(key, low, newest, top, size, bytes)
      redis.call('HSET', key, seq_s, entry, 'm', top, 'l', low, 'z', bytes)
      if bytes > budget then
        low, bytes = trim_to_budget(key, low, top, budget, bytes)
        redis.call('HSET', key, 'l', low, 'z', bytes)
      end
      redis.call('EXPIRE', key, ttl)
    end
  end
end
return out
