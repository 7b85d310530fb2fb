"""Per-subject token buckets: sends, reads and writes (block, group changes)
per user, registrations per source IP (an IPv6 /64 counts as one). Off
unless configured.

The buckets live in Redis, timed by Redis's clock, so every container
counts against the same bucket. Without Redis (the embedded default), or
while it is down, each process keeps the same buckets in its own memory: a
limit then holds per container rather than in all, which bounds a client by
the limit times the containers it reaches, where turning limits off would
not bound it at all. A limit never fails a request for want of Redis."""
from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple

from . import checks, keys
from .errors import RateLimited
from .redislink import SKIPPED, RedisLink, Script

TAKE = Script.load("ratelimit_take")
MAX_LOCAL_BUCKETS = 100_000  # a process's own buckets; the least recently used go beyond it


@dataclass(frozen=True)
class Limit:
    name: str  # "sends", "reads", "registrations"
    capacity: int  # tokens per window (and the burst)
    window_ms: int


class LocalBuckets:
    """The same token buckets in this process's memory."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._buckets: Dict[str, Tuple[float, float]] = {}  # key -> (tokens, at ms), oldest use first

    def take(self, key: str, limit: Limit, cost: int = 1) -> int:
        """0 (a token was there) or the ms to wait for the next one, as the Lua script answers."""
        now = time.monotonic() * 1000
        with self._lock:
            tokens, at = self._buckets.pop(key, (float(limit.capacity), now))
            tokens = min(limit.capacity, tokens + (now - at) * limit.capacity / limit.window_ms)
            wait = 0
            if tokens >= 1:
                tokens -= cost
            else:
                wait = math.ceil((1 - tokens) * limit.window_ms / limit.capacity)
            self._buckets[key] = (tokens, now)
            if len(self._buckets) > MAX_LOCAL_BUCKETS:
                del self._buckets[next(iter(self._buckets))]
            return wait


class RateLimiter:
    def __init__(self, link: Optional[RedisLink] = None) -> None:
        self._link = link
        self._local = LocalBuckets()

    def check(self, limit: Optional[Limit], subject: str) -> None:
        """Take one token for `subject`, or raise RateLimited."""
        self._raise_if_waiting(limit, self._take(limit, subject, 1))

    def require(self, limit: Optional[Limit], subject: str) -> None:
        """As check(), with the request's next Redis round trip (checks.py);
        at once without Redis."""
        link = self._link
        if limit is None or link is None or not link.available:
            self.check(limit, subject)
            return
        key = keys.bucket(subject, limit.name)

        def verdict(wait_ms: Any) -> None:
            if not isinstance(wait_ms, int):  # SKIPPED: this process's own bucket
                wait_ms = self._local.take(key, limit, 1)
            self._raise_if_waiting(limit, wait_ms)

        checks.add(checks.Check(link, lambda pipe: pipe.evalsha(TAKE.sha, 1, key, limit.capacity, limit.window_ms, 1),
                                verdict, scripts=(TAKE,)))

    def peek(self, limit: Optional[Limit], subject: str) -> None:
        """Raise RateLimited when `subject` has no token left; take none
        (failures are counted with charge(), after the fact)."""
        self._raise_if_waiting(limit, self._take(limit, subject, 0))

    def charge(self, limit: Optional[Limit], subject: str) -> None:
        """Take one token for `subject` (a failure to count), never raising."""
        self._take(limit, subject, 1)

    def _take(self, limit: Optional[Limit], subject: str, cost: int) -> int:
        if limit is None:
            return 0
        key = keys.bucket(subject, limit.name)
        link = self._link
        wait_ms = SKIPPED if link is None else link.guard(
            lambda: link.run(TAKE, [key], [limit.capacity, limit.window_ms, cost]))
        if wait_ms is SKIPPED:
            wait_ms = self._local.take(key, limit, cost)
        return wait_ms if isinstance(wait_ms, int) else 0

    @staticmethod
    def _raise_if_waiting(limit: Optional[Limit], wait_ms: int) -> None:
        if limit is not None and wait_ms > 0:
            seconds = limit.window_ms // 1000
            per = f"{seconds // 60} minutes" if seconds % 60 == 0 and seconds > 60 else f"{seconds} s"
            raise RateLimited(f"too many {limit.name}: at most {limit.capacity} per {per}",
                              retry_after_seconds=max(1, math.ceil(wait_ms / 1000)))
