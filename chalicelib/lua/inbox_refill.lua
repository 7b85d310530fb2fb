-- KEYS[1]  the user's window (keys.window)
-- ARGV     ticket, newest, size, ttl, budget, then seq, entry pairs
-- Lands a database read only if its miss's ticket is still there; never lowers `m`.
local key = KEYS[1]
local meta = redis.call('HMGET', key, 't', 'm', 'l', 'z')
if meta[1] ~= ARGV[1] then return 0 end
local size = tonumber(ARGV[3])
local newest = math.max(tonumber(meta[2] or 0), tonumber(ARGV[2]))
local low = tonumber(meta[3] or (newest + 1))
local bytes = tonumber(meta[4] or 0)
for i = 6, #ARGV, 2 do
  local seq = tonumber(ARGV[i])
  if seq > newest - size then
    bytes = bytes + #ARGV[i + 1] - redis.call('HSTRLEN', key, ARGV[i])
    redis.call('HSET', key, ARGV[i], ARGV[i + 1])
    if seq < low then low = seq end
  end
end
low, bytes = trim_to_size(key, low, newest, newest, size, bytes)
low, bytes = trim_to_budget(key, low, newest, tonumber(ARGV[5]), bytes)
redis.call('HSET', key, 'm', newest, 'l', low, 'z', bytes, 'b', '1')
redis.call('HDEL', key, 't')
redis.call('EXPIRE', key, ARGV[4])
return 1
