-- Shared by the scripts that write entries into a window (inbox_deliver,
-- inbox_refill), put in front of them when they are loaded (redislink.Script).
-- Entries are only ever held in [low, held]; each trim returns the new low
-- and bytes, and the caller writes them (l, z) with its own HSET.

-- Below the newest `size` seqs up to `top`: at most `size` seqs, one HDEL.
local function trim_to_size(key, low, held, top, size, bytes)
  local floor = top - size + 1
  local drop = {}
  for s = low, math.min(floor - 1, held) do drop[#drop + 1] = tostring(s) end
  for _, f in ipairs(drop) do bytes = bytes - redis.call('HSTRLEN', key, f) end
  if #drop > 0 then redis.call('HDEL', key, unpack(drop)) end
  return math.max(low, floor), bytes
end

-- Over `budget` bytes: the oldest go first (an entry already written counts).
local function trim_to_budget(key, low, top, budget, bytes)
  while bytes > budget and low <= top do
    bytes = bytes - redis.call('HSTRLEN', key, tostring(low))
    redis.call('HDEL', key, tostring(low))
    low = low + 1
  end
  return low, bytes
end
