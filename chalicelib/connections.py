"""Who is connected over WebSocket: each user's live connection ids.

With Redis (deployed, and whenever REDIS_URL is set): a sorted set per user,
keys.connections (connection id -> expiry in ms, in the user's cluster slot,
so the delivery script reads it beside the user's window), and
keys.connection_owner -> user id, so $disconnect, which knows only the
connection, finds its user. Entries expire with API Gateway's 2-hour limit
on a connection, so one whose $disconnect never came does not stay.

Without Redis (the embedded default of `make run`, one process): the same
in this process's memory.
"""
from __future__ import annotations

import threading
import time
from typing import Any, Dict, Iterable, List, Protocol, Tuple

from . import keys
from .metering import count_redis_round_trip
from .redislink import SKIPPED, RedisLink, Script

CONNECTION_TTL_SECONDS = 2 * 3600  # API Gateway closes a WebSocket after 2 hours
MAX_CONNECTIONS_PER_USER = 10  # a new one beyond this is refused

# What add() answers.
ADDED = "added"
FULL = "full"  # the user already holds MAX_CONNECTIONS_PER_USER
UNAVAILABLE = "unavailable"  # it could not be registered (Redis down)


ADD = Script.load("connection_add")


class Connections(Protocol):
    """Each user's live WebSocket connections, by id."""

    def add(self, user_id: str, connection_id: str, session_id: str) -> str:
        """Register a connection of this user's session: ADDED, FULL or UNAVAILABLE."""

    def remove(self, connection_id: str) -> None:
        """$disconnect: forget the connection, whoever it belonged to."""

    def forget(self, gone: Iterable[Tuple[str, str]]) -> None:
        """(user id, connection id) pairs that posting found gone."""

    def of(self, user_ids: Iterable[str]) -> Dict[str, List[str]]:
        """The live connections of these users (only those that have some)."""

    def of_sessions(self, user_id: str, session_ids: Iterable[str]) -> List[str]:
        """The user's live connections opened with one of these sessions."""


class RedisConnections:
    def __init__(self, link: RedisLink) -> None:
        self._link = link

    def add(self, user_id: str, connection_id: str, session_id: str) -> str:
        def add() -> str:
            if not self._link.run(ADD, [keys.connections(user_id)], [connection_id, CONNECTION_TTL_SECONDS,
                                                                      MAX_CONNECTIONS_PER_USER]):
                return FULL
            count_redis_round_trip()
            self._link.client.set(keys.connection_owner(connection_id), f"{user_id} {session_id}",
                                  ex=CONNECTION_TTL_SECONDS)
            return ADDED

        added = self._link.guard(add)
        return UNAVAILABLE if added is SKIPPED else added

    def remove(self, connection_id: str) -> None:
        """$disconnect: forget the connection, whoever it belonged to."""
        def remove() -> None:
            count_redis_round_trip()
            owner = self._link.client.getdel(keys.connection_owner(connection_id))
            if owner is not None:
                count_redis_round_trip()
                self._link.client.zrem(keys.connections(owner.decode().split()[0]), connection_id)

        self._link.guard(remove)

    def forget(self, gone: Iterable[Tuple[str, str]]) -> None:
        """(user id, connection id) pairs that posting found gone."""
        pairs = list(gone)
        if not pairs:
            return

        def forget() -> None:
            pipe = self._link.client.pipeline(transaction=False)
            for user_id, connection_id in pairs:
                pipe.zrem(keys.connections(user_id), connection_id)
                pipe.delete(keys.connection_owner(connection_id))
            count_redis_round_trip()
            pipe.execute()

        self._link.guard(forget)

    def of(self, user_ids: Iterable[str]) -> Dict[str, List[str]]:
        """A send learns this from its delivery script (cache.DELIVER) in the
        round trip it makes anyway; this is the same read on its own."""
        users = list(user_ids)
        if not users:
            return {}

        def read() -> List[Any]:
            now_ms = int(time.time() * 1000)
            pipe = self._link.client.pipeline(transaction=False)
            for user_id in users:
                pipe.zrangebyscore(keys.connections(user_id), now_ms, "+inf")
            count_redis_round_trip()
            return pipe.execute()

        found = self._link.guard(read)
        if found is SKIPPED:
            return {}
        return {u: [c.decode() for c in ids] for u, ids in zip(users, found, strict=True) if ids}

    def of_sessions(self, user_id: str, session_ids: Iterable[str]) -> List[str]:
        wanted = set(session_ids)
        ids = self.of([user_id]).get(user_id, [])
        if not ids or not wanted:
            return []

        def owners() -> List[Any]:
            count_redis_round_trip()
            return list(self._link.client.mget([keys.connection_owner(c) for c in ids]))

        found = self._link.guard(owners)
        if found is SKIPPED:
            return []
        return [c for c, owner in zip(ids, found, strict=True)
                if owner is not None and owner.decode().split()[-1] in wanted]


class LocalConnections:
    """The same for one process, in memory."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_user: Dict[str, Dict[str, float]] = {}  # user -> connection -> expiry (monotonic)
        self._owner: Dict[str, Tuple[str, str]] = {}  # connection -> (user, session)

    def add(self, user_id: str, connection_id: str, session_id: str) -> str:
        now = time.monotonic()
        with self._lock:
            live = {c: e for c, e in self._by_user.get(user_id, {}).items() if e > now}
            if len(live) >= MAX_CONNECTIONS_PER_USER:
                return FULL
            live[connection_id] = now + CONNECTION_TTL_SECONDS
            self._by_user[user_id] = live
            self._owner[connection_id] = (user_id, session_id)
        return ADDED

    def remove(self, connection_id: str) -> None:
        with self._lock:
            owner = self._owner.pop(connection_id, None)
            if owner is not None:
                self._by_user.get(owner[0], {}).pop(connection_id, None)

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

    def of_sessions(self, user_id: str, session_ids: Iterable[str]) -> List[str]:
        wanted = set(session_ids)
        with self._lock:
            return [c for c, (u, s) in self._owner.items() if u == user_id and s in wanted]
