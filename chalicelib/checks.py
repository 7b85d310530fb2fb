"""Checks a request must pass that ask Redis (is the token's session still
live? is there a token in the caller's rate-limit bucket?), sent with the
request's next Redis round trip instead of in round trips of their own: a
cache hit is then one round trip, its checks included.

Each check's verdict runs on its reply before the reply it rode with is
used, and raises to refuse the request. Nothing leaves a request before its
checks pass: a write unit flushes them before its transaction (db.py), and
the edge before it answers (web/edge.py); a check that finds Redis down or
failing gets SKIPPED and decides without it (the database, the process's
own buckets). Per thread, like metering: a container serves one request at
a time on a thread."""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Callable, List, Sequence

_local = threading.local()


@dataclass(frozen=True)
class Check:
    link: Any  # the redislink.RedisLink to ask
    queue: Callable[[Any], None]  # puts the check's one command on a redis-py pipeline
    verdict: Callable[[Any], None]  # its reply (or SKIPPED): raises to refuse the request
    scripts: Sequence[Any] = ()  # the redislink.Scripts the command calls (loaded again if Redis forgot them)


def _pending() -> List[Check]:
    current = getattr(_local, "pending", None)
    if current is None:
        current = _local.pending = []
    return current


def add(check: Check) -> None:
    _pending().append(check)


def take(link: Any) -> List[Check]:
    """The pending checks that ask `link`, no longer pending."""
    pending = _pending()
    mine = [c for c in pending if c.link is link]
    pending[:] = [c for c in pending if c.link is not link]
    return mine


def flush() -> None:
    """Ask every pending check now (one round trip per Redis link) and run its verdict."""
    while _pending():
        link = _pending()[0].link
        link.ask(take(link))


def clear() -> None:
    """A new request: nothing is pending."""
    _pending().clear()
