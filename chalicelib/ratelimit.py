"""Per-subject token buckets in Redis: sends, reads and writes (block, group
changes) per user, registrations per source IP (an IPv6 /64 counts as one).
Off unless configured, and off while Redis is absent or unreachable:
availability wins over limiting."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

from .errors import RateLimited
from .redislink import RedisLink, Script

TAKE = Script("ratelimit_take", """
-- KEYS[1] the bucket; ARGV: capacity, refill window in ms.
-- Redis's own clock, so every Lambda container agrees on time. Returns 0
-- (allowed) or the ms to wait for the next token.
local capacity, window = tonumber(ARGV[1]), tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens, at = tonumber(state[1]) or capacity, tonumber(state[2]) or now
tokens = math.min(capacity, tokens + (now - at) * capacity / window)
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
else
  wait = math.ceil((1 - tokens) * window / capacity)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', now)
redis.call('PEXPIRE', KEYS[1], window)
return wait
""")


@dataclass(frozen=True)
class Limit:
    name: str  # "sends", "reads", "registrations"
    capacity: int  # tokens per window (and the burst)
    window_ms: int


class RateLimiter:
    def __init__(self, link: RedisLink) -> None:
        self._link = link

    def check(self, limit: Optional[Limit], subject: str) -> None:
        """Take one token for `subject`, or raise RateLimited."""
        if limit is None:
            return
        key = f"rl:{{{subject}}}:{limit.name}"
        wait_ms = self._link.call(TAKE, [key], [limit.capacity, limit.window_ms])
        if isinstance(wait_ms, int) and wait_ms > 0:
            raise RateLimited(
                f"too many {limit.name}: at most {limit.capacity} per {limit.window_ms // 1000} s",
                retry_after_seconds=max(1, math.ceil(wait_ms / 1000)),
            )
