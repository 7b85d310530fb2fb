-- KEYS[1]  the user's window (keys.window)
-- ARGV     after, limit, ticket, ticket_ttl
-- Returns {newest, entry...} for a provably complete page, else leaves the
-- ticket for a refill and returns false.
local key = KEYS[1]
local after, limit = tonumber(ARGV[1]), tonumber(ARGV[2])
local meta = redis.call('HMGET', key, 'b', 'm')
if meta[1] == '1' then
  local newest = tonumber(meta[2])
  local upper = math.min(after + limit, newest)
  local out = {newest}
  if upper > after then
    local fields = {}
    for s = after + 1, upper do fields[#fields + 1] = tostring(s) end
    local values = redis.call('HMGET', key, unpack(fields))
    for i = 1, #fields do
      if not values[i] then out = nil break end
      out[i + 1] = values[i]
    end
  end
  if out then return out end
end
redis.call('HSET', key, 't', ARGV[3])
if redis.call('TTL', key) < 0 then redis.call('EXPIRE', key, ARGV[4]) end
return false
