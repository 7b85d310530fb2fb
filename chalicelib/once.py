"""Marks that let a thing be used once (a connect ticket's nonce), for as
long as the thing could be used at all: in Redis (SET NX with an expiry),
so a second use is refused by every container; without Redis, or while it
is down, in this process's memory."""
from __future__ import annotations

import threading
import time
from typing import Callable, Dict, Optional

from .metering import count_redis_round_trip
from .redislink import SKIPPED, RedisLink


class UsedOnce:
    def __init__(self, key: Callable[[str], str], link: Optional[RedisLink] = None) -> None:
        self._key = key
        self._link = link
        self._lock = threading.Lock()
        self._used: Dict[str, float] = {}  # without Redis: mark -> expiry (monotonic)

    def first_use(self, mark: str, *, seconds: int) -> bool:
        """True the first time `mark` is used within `seconds`, False after."""
        link = self._link
        if link is not None:
            def set_once() -> bool:
                count_redis_round_trip()
                return bool(link.client.set(self._key(mark), "1", nx=True, ex=max(1, seconds)))

            first = link.guard(set_once)
            if first is not SKIPPED:
                return bool(first)
        now = time.monotonic()
        with self._lock:
            self._used = {m: until for m, until in self._used.items() if until > now}
            if mark in self._used:
                return False
            self._used[mark] = now + seconds
            return True
