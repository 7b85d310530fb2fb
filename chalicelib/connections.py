"""Who is connected over WebSocket: each user's live connection ids.

With Redis (deployed, and whenever REDIS_URL is set): a sorted set per user,
`ws:{<user_id>}` (connection id -> expiry in ms, in the user's cluster slot,
so the delivery script reads it beside the user's window), and
`wsconn:{<connection_id>}` -> user id, so $disconnect, which knows only the
connection, finds its user. Entries expire with API Gateway's 2-hour limit
on a connection, so one whose $disconnect never came does not stay.

Without Redis (the embedded default of `make run`, one process): the same
in this process's memory.
"""
from __future__ import annotations

import threading
import time
from typing import Dict, Iterable, List, Tuple

from .metering import count_redis_round_trip
from .redislink import SKIPPED, RedisLink, Script

CONNECTION_TTL_SECONDS = 2 * 3600  # API Gateway closes a WebSocket after 2 hours
MAX_CONNECTIONS_PER_USER = 10  # more push to too many devices: the oldest go


def connections_key(user_id: str) -> str:
    # cache.DELIVER names this key from the window's, inbox:{<user_id>}.
    return f"ws:{{{user_id}}}"


def owner_key(connection_id: str) -> str:
    return f"wsconn:{{{connection_id}}}"


ADD = Script("connection_add", """
-- KEYS[1] the user's connections; ARGV: connection id, ttl seconds, max per user.
-- Drops the expired, adds this one, keeps the newest `max`.
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]) * 1000, ARGV[1])
local extra = redis.call('ZCARD', KEYS[1]) - tonumber(ARGV[3])
if extra > 0 then redis.call('ZPOPMIN', KEYS[1], extra) end
redis.call('EXPIRE', KEYS[1], ARGV[2])
return 1
""")


class RedisConnections:
    def __init__(self, link: RedisLink) -> None:
        self._link = link

    def add(self, user_id: str, connection_id: str) -> bool:
        """Register a connection; False when Redis could not be reached."""
        def add() -> None:
            self._link.run(ADD, [connections_key(user_id)], [connection_id, CONNECTION_TTL_SECONDS,
                                                               MAX_CONNECTIONS_PER_USER])
            count_redis_round_trip()
            self._link.client.set(owner_key(connection_id), user_id, ex=CONNECTION_TTL_SECONDS)

        return self._link.guard(add) is not SKIPPED

    def remove(self, connection_id: str) -> None:
        """$disconnect: forget the connection, whoever it belonged to."""
        def remove() -> None:
            count_redis_round_trip()
            owner = self._link.client.getdel(owner_key(connection_id))
            if owner is not None:
                count_redis_round_trip()
                self._link.client.zrem(connections_key(owner.decode()), connection_id)

        self._link.guard(remove)

    def forget(self, gone: Iterable[Tuple[str, str]]) -> None:
        """(user id, connection id) pairs that posting found gone."""
        pairs = list(gone)
        if not pairs:
            return

        def forget() -> None:
            pipe = self._link.client.pipeline(transaction=False)
            for user_id, connection_id in pairs:
                pipe.zrem(connections_key(user_id), connection_id)
                pipe.delete(owner_key(connection_id))
            count_redis_round_trip()
            pipe.execute()

        self._link.guard(forget)

    # No of(): with Redis, a send's delivery script returns who is connected (cache.DELIVER).


class LocalConnections:
    """The same for one process, in memory."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_user: Dict[str, Dict[str, float]] = {}  # user -> connection -> expiry (monotonic)
        self._owner: Dict[str, str] = {}

    def add(self, user_id: str, connection_id: str) -> bool:
        now = time.monotonic()
        with self._lock:
            live = {c: e for c, e in self._by_user.get(user_id, {}).items() if e > now}
            live[connection_id] = now + CONNECTION_TTL_SECONDS
            for old in sorted(live, key=live.get)[:-MAX_CONNECTIONS_PER_USER]:
                del live[old]
                self._owner.pop(old, None)
            self._by_user[user_id] = live
            self._owner[connection_id] = user_id
        return True

    def remove(self, connection_id: str) -> None:
        with self._lock:
            owner = self._owner.pop(connection_id, None)
            if owner is not None:
                self._by_user.get(owner, {}).pop(connection_id, None)

    def forget(self, gone: Iterable[Tuple[str, str]]) -> None:
        with self._lock:
            for user_id, connection_id in gone:
                self._by_user.get(user_id, {}).pop(connection_id, None)
                self._owner.pop(connection_id, None)

    def of(self, user_ids: Iterable[str]) -> Dict[str, List[str]]:
        now = time.monotonic()
        with self._lock:
            found = {u: [c for c, e in self._by_user.get(u, {}).items() if e > now] for u in user_ids}
        return {u: ids for u, ids in found.items() if ids}
