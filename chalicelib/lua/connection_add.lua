-- KEYS[1]  the user's connections (keys.connections)
-- ARGV     connection id, ttl seconds, max per user
-- Drops the expired, adds this one, keeps the newest `max`.
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]) * 1000, ARGV[1])
local extra = redis.call('ZCARD', KEYS[1]) - tonumber(ARGV[3])
if extra > 0 then redis.call('ZPOPMIN', KEYS[1], extra) end
redis.call('EXPIRE', KEYS[1], ARGV[2])
return 1
