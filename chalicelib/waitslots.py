"""How many reads may wait at once. Deployed, a waiting long-poll holds one
of the API's reserved Lambda containers for up to 20 s, so without a cap one
account could hold them all for 2.5 requests a second. Two caps:

- per user, across every container: a sorted set per user in Redis
  (keys.waits), each wait a token that expires with its wait (so a container
  that dies mid-wait frees its slot), taken and given back in one round
  trip each. Without Redis, or while it is down, the same count is kept in
  this process (which is all of `make run`).
- per process: the waits this process holds in all (a Lambda container
  serves one request at a time, so there it is 1; `make run` and `chalice
  local` serve every request of one machine from one process).

A read that finds no slot is answered at once, as if `wait` were 0; the edge
says so with a header (X-Wait-Refused), and the clients then wait before
reading again.
"""
from __future__ import annotations

import contextlib
import threading
import uuid
from typing import Dict, Iterator, Optional

from . import checks, keys
from .metering import count_redis_round_trip
from .redislink import SKIPPED, RedisLink, Script

ENTER = Script.load("wait_enter")
MARGIN_MS = 5_000  # beyond the wait itself, before an abandoned slot frees itself

PER_USER = "per-user"  # why a wait was refused
PER_PROCESS = "per-process"


class WaitSlots:
    def __init__(self, link: Optional[RedisLink] = None, *, per_user: int, per_process: int) -> None:
        self._link = link
        self._per_user = per_user
        self._per_process = per_process
        self._lock = threading.Lock()
        self._held = 0
        self._by_user: Dict[str, int] = {}  # without Redis

    @contextlib.contextmanager
    def take(self, user_id: str, *, seconds: float) -> Iterator[Optional[str]]:
        """A slot for one wait of up to `seconds`, held until the block ends:
        None when granted, else why not (PER_USER or PER_PROCESS)."""
        with self._lock:
            full = self._held >= self._per_process
            if not full:
                self._held += 1
        if full:
            yield PER_PROCESS
            return
        token = uuid.uuid4().hex
        where = None
        try:
            where = self._enter(user_id, token, seconds)
            yield None if where else PER_USER
        finally:
            if where == "redis":
                self._leave_redis(user_id, token)
            with self._lock:
                self._held -= 1
                if where == "local":
                    left = self._by_user[user_id] - 1
                    if left:
                        self._by_user[user_id] = left
                    else:
                        del self._by_user[user_id]

    def _enter(self, user_id: str, token: str, seconds: float) -> Optional[str]:
        """"redis" or "local" for where the slot was taken; None when the user holds the most."""
        link = self._link
        if link is not None:
            checks.flush()  # a refused request takes no slot
            ttl_ms = int(seconds * 1000) + MARGIN_MS
            taken = link.guard(lambda: link.run(ENTER, [keys.waits(user_id)], [token, ttl_ms, self._per_user]))
            if taken is not SKIPPED:
                return "redis" if taken == 1 else None
        with self._lock:  # no Redis: this process's own count
            held = self._by_user.get(user_id, 0)
            if held >= self._per_user:
                return None
            self._by_user[user_id] = held + 1
            return "local"

    def _leave_redis(self, user_id: str, token: str) -> None:
        link = self._link
        if link is None:
            return

        def leave() -> None:
            count_redis_round_trip()
            link.client.zrem(keys.waits(user_id), token)

        link.guard(leave)
