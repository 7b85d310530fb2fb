-- KEYS[1]  the user's connections (keys.connections)
-- ARGV     connection id, ttl seconds, max per user
-- Drops the expired, then adds this one if the user holds fewer than `max`:
-- 1, or 0 when the user already holds the most (the new one is refused).
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]) * 1000, ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
return 1
