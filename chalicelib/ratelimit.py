"""Per-subject token buckets in Redis: sends, reads and writes (block, group
changes) per user, registrations per source IP (an IPv6 /64 counts as one).
Off unless configured, and off while Redis is absent or unreachable:
availability wins over limiting."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

from . import keys
from .errors import RateLimited
from .redislink import RedisLink, Script

TAKE = Script.load("ratelimit_take")


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
        key = keys.bucket(subject, limit.name)
        wait_ms = self._link.call(TAKE, [key], [limit.capacity, limit.window_ms])
        if isinstance(wait_ms, int) and wait_ms > 0:
            raise RateLimited(
                f"too many {limit.name}: at most {limit.capacity} per {limit.window_ms // 1000} s",
                retry_after_seconds=max(1, math.ceil(wait_ms / 1000)),
            )
