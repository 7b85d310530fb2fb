"""Whether a session is live, asked on every authenticated request, without
a database round trip on the hot path.

The database (sessions.revoked_at) is the truth. In front of it:

1. this container's own answers, kept LOCAL_SECONDS (30 s;
   SESSION_CACHE_SECONDS): no round trip;
2. Redis, keys.session(id): "1" live, kept LIVE_SECONDS (30 s), or "0"
   revoked, kept a day: one Redis round trip;
3. the database, one primary-key lookup, whose answer goes to Redis.

Signing out writes the database, then "0" to Redis and to this container's
answers, so the server that signed a session out refuses it at once and
every other container within LOCAL_SECONDS (it asks Redis again, which says
"0"). If Redis lost that write (a failover at that moment), its "1" expires
within LIVE_SECONDS and the database is asked: every server refuses the
session within 60 s all the same. Without Redis, containers ask the
database once per LOCAL_SECONDS per session.
"""
from __future__ import annotations

import threading
import time
from typing import Any, Callable, Dict, Iterable, Optional, Tuple

from . import checks, keys
from .db import Database
from .errors import Unauthorized
from .metering import count_redis_round_trip
from .redislink import SKIPPED, RedisLink
from .repositories import Sessions

LOCAL_SECONDS = 30.0
LIVE_SECONDS = 30
REVOKED_SECONDS = 86_400
MAX_LOCAL = 100_000  # answers a container keeps; the oldest go first beyond it


class SessionStates:
    def __init__(self, lookup: Callable[[str], Optional[bool]], link: Optional[RedisLink] = None, *,
                 local_seconds: float = LOCAL_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        """`lookup(session_id)`: the database's answer (None: no such session)."""
        self._lookup = lookup
        self._link = link
        self._local_seconds = local_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._local: Dict[str, Tuple[bool, float]] = {}  # session -> (live, until)

    def live(self, session_id: str) -> bool:
        known = self._known(session_id)
        if known is not None:
            return known
        answer = self._from_redis(session_id)
        return self._decided(session_id, answer)

    def require(self, session_id: str) -> None:
        """Refuse (Unauthorized) a session that is not live: at once when
        this container knows, else with the request's next Redis round trip
        (checks.py), else (no Redis) from the database."""
        known = self._known(session_id)
        if known is None and self._link is not None:
            key = keys.session(session_id)
            checks.add(checks.Check(self._link, lambda pipe: pipe.get(key),
                                    lambda reply: self._refuse_unless(self._decided(session_id, _answer(reply)))))
            return
        self._refuse_unless(known if known is not None else self._decided(session_id, None))

    @staticmethod
    def _refuse_unless(live: bool) -> None:
        if not live:
            raise Unauthorized("this device was signed out: sign in again")

    def _known(self, session_id: str) -> Optional[bool]:
        """This container's answer, if it has a fresh one."""
        with self._lock:
            known = self._local.get(session_id)
        return known[0] if known is not None and known[1] > self._clock() else None

    def _decided(self, session_id: str, answer: Optional[bool]) -> bool:
        """Redis's answer, or the database's when Redis had none (given to Redis), remembered here."""
        if answer is None:
            answer = bool(self._lookup(session_id))
            self._to_redis({session_id: answer})
        self._remember({session_id: answer})
        return answer

    @classmethod
    def over(cls, db: Database, link: Optional[RedisLink] = None, *,
             local_seconds: float = LOCAL_SECONDS) -> "SessionStates":
        """Answers from `db`'s sessions table, behind Redis (`link`) and this container's own."""
        return cls(lambda session_id: db.run(lambda tx: Sessions(tx).live(session_id=session_id), write=False),
                   link, local_seconds=local_seconds)

    def forget_local(self) -> None:
        """Drop this container's own answers (as a new container starts: the bench)."""
        with self._lock:
            self._local.clear()

    def started(self, session_id: str) -> None:
        """A session just made (register, login, link): its first requests here need no lookup."""
        self._remember({session_id: True})
        self._to_redis({session_id: True})

    def revoked(self, session_ids: Iterable[str]) -> None:
        """After the database says so: this container and Redis refuse them from now on."""
        states = {s: False for s in session_ids}
        if states:
            self._remember(states)
            self._to_redis(states)

    def _remember(self, states: Dict[str, bool]) -> None:
        until = self._clock() + self._local_seconds
        with self._lock:
            for session_id, live in states.items():
                self._local.pop(session_id, None)
                self._local[session_id] = (live, until)
            while len(self._local) > MAX_LOCAL:
                del self._local[next(iter(self._local))]

    def _from_redis(self, session_id: str) -> Optional[bool]:
        link = self._link
        if link is None:
            return None

        def get() -> Optional[bytes]:
            count_redis_round_trip()
            return link.client.get(keys.session(session_id))

        return _answer(link.guard(get))

    def _to_redis(self, states: Dict[str, bool]) -> None:
        link = self._link
        if link is None:
            return

        def put() -> None:
            pipe = link.client.pipeline(transaction=False)
            for session_id, live in states.items():
                pipe.set(keys.session(session_id), "1" if live else "0", ex=LIVE_SECONDS if live else REVOKED_SECONDS)
            count_redis_round_trip()
            pipe.execute()

        link.guard(put)


def _answer(reply: Any) -> Optional[bool]:
    """A session key's value: "1" live, "0" revoked, None not known to Redis (or Redis was SKIPPED)."""
    return None if reply is SKIPPED or reply is None else reply == b"1"
