"""Round trips this thread made to the database and to Redis, counted where
they are made (db.Tx, redislink.RedisLink). The request log line reports
them per request and `make bench` per call, from the same counters."""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Callable, List, Optional, Sequence, Tuple


@dataclass
class Meter:
    db_statements: int = 0  # statements, COMMIT included (a multi-row insert is one)
    db_round_trips: int = 0  # packets to the database and back: a batch of statements is one
    redis_round_trips: int = 0  # a command, a script call or a whole pipeline
    recorder: Optional[Callable[[Tuple[str, Sequence[Any]]], None]] = None  # (SQL, parameters): make bench's EXPLAIN


_local = threading.local()


def meter() -> Meter:
    """This thread's meter."""
    current = getattr(_local, "meter", None)
    if current is None:
        current = _local.meter = Meter()
    return current


def count_statement(sql: str, params: Sequence[Any] = (), *, round_trip: bool = True) -> None:
    """One statement; `round_trip` False when it travels in a batch already counted."""
    m = meter()
    m.db_statements += 1
    m.db_round_trips += round_trip
    if m.recorder is not None:
        m.recorder((sql, params))


def count_redis_round_trip() -> None:
    meter().redis_round_trips += 1


def recording(into: List[Tuple[str, Sequence[Any]]]) -> Callable[[], None]:
    """Record this thread's statements into `into` until the returned stop() is called."""
    m = meter()
    m.recorder = into.append

    def stop() -> None:
        m.recorder = None

    return stop
