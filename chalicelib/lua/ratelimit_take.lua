-- KEYS[1]  the bucket (keys.bucket)
-- ARGV     capacity, refill window in ms, cost (1: take a token; 0: only look)
-- Redis's own clock, so every Lambda container agrees on time. Returns 0
-- (a token was there, and was taken unless the cost is 0) or the ms to wait
-- for the next token.
local capacity, window, cost = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens, at = tonumber(state[1]) or capacity, tonumber(state[2]) or now
tokens = math.min(capacity, tokens + (now - at) * capacity / window)
local wait = 0
if tokens >= 1 then
  tokens = tokens - cost
else
  wait = math.ceil((1 - tokens) * window / capacity)
end
if cost > 0 then
  redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', now)
  redis.call('PEXPIRE', KEYS[1], window)
end
return wait
