-- KEYS[1]  the user's waiting reads (keys.waits: token -> expiry, ms)
-- ARGV     token, ttl in ms (the wait and a margin), the most a user may hold
-- Drops the expired (a container that died mid-wait), then takes a slot if
-- one is free: 1, or 0 when the user already holds the most.
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then return 0 end
local expiry = now + tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], expiry, ARGV[1])
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[2]) then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 1
