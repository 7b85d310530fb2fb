"""Units of work: connections opened lazily and kept in a small pool (at most
MAX_IDLE_CONNECTIONS idle; a Lambda container, serving one request at a
time, uses one), transactions with a time bound and bounded retries, and
what a driver failure means to them. A unit of work holds a connection only
while it runs, so a request that waits (a long-poll) holds none. Tx runs a
unit's statements, one by one or as one batch. Where the database is, and
everything that differs between MySQL and SQLite, is in dialects.py; the
SQL itself is in repositories.py."""
from __future__ import annotations

import logging
import random
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Generic, List, Optional, Sequence, Tuple, TypeVar

from . import checks, dialects, timebudget
from .dialects import Dialect, Result, Statement
from .errors import ServiceUnavailable
from .metering import count_statement
from .secrets import SecretStore
from .settings import Settings

log = logging.getLogger(__name__)
T = TypeVar("T")

MAX_ATTEMPTS = 4  # a deadlock or lost lock wait is retried this many times in all
MAX_IDLE_CONNECTIONS = 8  # kept open between units of work; more are closed after use


class DuplicateKey(Exception):
    """A unique or primary key already holds this value."""


class MissingReference(Exception):
    """A foreign key points at a row that does not exist."""


class _Retryable(Exception):
    """The transaction lost a lock conflict (deadlock, lock wait timeout)."""


class _ConnectionLost(Exception):
    pass


_FAILURES = {
    dialects.DUPLICATE: DuplicateKey,
    dialects.MISSING_REFERENCE: MissingReference,
    dialects.RETRYABLE: _Retryable,
    dialects.LOST: _ConnectionLost,
}


def classify(dialect: Dialect, exc: BaseException) -> BaseException:
    """The failure a driver error means, or the error itself when it means none."""
    if isinstance(exc, tuple(_FAILURES.values())):
        return exc
    kind = dialect.classify(exc)
    return exc if kind is None else _FAILURES[kind](type(exc).__name__)


class CountingCursor:
    """A driver cursor whose every statement counts as one round trip."""

    def __init__(self, cursor: Any) -> None:
        self._cursor = cursor

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        count_statement(sql, params)
        return self._cursor.execute(sql, params)

    def __getattr__(self, name: str) -> Any:  # fetchone, fetchall, rowcount, lastrowid
        return getattr(self._cursor, name)


@dataclass(frozen=True)
class Query(Generic[T]):
    """A read and what its rows mean, so reads that do not depend on each
    other go in one round trip (Tx.fetch). `sql` None: nothing to ask (an
    empty IN list), `parse` gets no rows."""

    sql: Optional[str]
    params: Sequence[Any]
    parse: Callable[[List[Tuple[Any, ...]]], T]


class Tx:
    """The statements of one unit of work. SQL is written with %s placeholders."""

    def __init__(self, conn: Any, dialect: Dialect, *, write: bool = False) -> None:
        self._dialect = dialect
        self._cur = CountingCursor(conn.cursor())
        # A write's transaction: begun here (SQLite), or by a statement that
        # goes out with the first one (MySQL). `open` once there is one to commit.
        self._begin = dialect.begin(conn) if write else None
        self.open = write and self._begin is None

    def _sql(self, sql: str) -> str:
        return sql.replace("%s", self._dialect.placeholder)

    def _call(self, fn: Callable[..., T], *args: Any) -> T:
        try:
            return fn(*args)
        except Exception as exc:
            failure = classify(self._dialect, exc)
            if failure is exc:
                raise
            raise failure from exc

    def _run(self, sql: str, params: Sequence[Any]) -> Result:
        if self._begin is not None:
            return self.batch([(sql, params)])[0]  # with the transaction's opening statement
        self._call(self._cur.execute, self._sql(sql), tuple(params))
        return Result(self._cur.rowcount, None, list(self._cur.fetchall() or ()))

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        return self._run(sql, params).rowcount

    def one(self, sql: str, params: Sequence[Any] = ()) -> Optional[Tuple[Any, ...]]:
        rows = self._run(sql, params).rows
        return rows[0] if rows else None

    def all(self, sql: str, params: Sequence[Any] = ()) -> List[Tuple[Any, ...]]:
        return self._run(sql, params).rows

    def fetch(self, *queries: Query[Any]) -> List[Any]:
        """Each query's parsed answer, in order, from one batch."""
        asked = [q for q in queries if q.sql is not None]
        results = iter(self.batch([(q.sql, q.params) for q in asked if q.sql is not None]) if asked else [])
        return [q.parse(next(results).rows if q.sql is not None else []) for q in queries]

    @property
    def dialect(self) -> Dialect:
        """The database's dialect, for the few statements whose SQL differs."""
        return self._dialect

    def batch(self, statements: Sequence[Statement]) -> List[Result]:
        """Run statements in order, in one round trip where the dialect can
        (MySQL's multi-statement packets), and say what each did. A failing
        statement raises and the ones after it do not run."""
        sent = [(self._sql(sql), tuple(p)) for sql, p in statements]
        if self._begin is None:
            return self._call(self._dialect.batch, self._cur, sent)
        begin, self._begin, self.open = self._begin, None, True
        return self._call(self._dialect.batch, self._cur, [(begin, ()), *sent])[1:]


class Database:
    def __init__(self, settings: Settings, *, secrets: Optional[SecretStore] = None) -> None:
        self.dialect = dialects.dialect_for(settings, secrets)
        # A unit of work, its retries included, takes at most this long.
        self._unit_seconds = settings.db_read_timeout
        self._idle: List[Any] = []  # most recently used last
        self._lock = threading.Lock()

    @property
    def kind(self) -> str:
        return self.dialect.name

    def _take(self) -> Any:
        with self._lock:
            if self._idle:
                return self._idle.pop()
        return self.dialect.connect()

    def _give_back(self, conn: Any) -> None:
        with self._lock:
            if len(self._idle) < MAX_IDLE_CONNECTIONS:
                self._idle.append(conn)
                return
        _close(conn)

    def close(self) -> None:
        """Close the idle connections (tests, shutdown)."""
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            _close(conn)

    def run(self, work: Callable[[Tx], T], *, write: bool) -> T:
        """Run `work` as one transaction and commit it.

        Every wait fits the request's time budget (timebudget.py) and the
        whole unit, retries included, DB_READ_TIMEOUT: when either is spent,
        the answer is a 503. Deadlocks and lock wait timeouts are
        retried with jittered back-off.
        A connection found dead before the commit is replaced and the work
        retried once (the server rolled it back), and so is a read's, whose
        commit changes nothing. A connection lost during a write's commit
        leaves the outcome unknown: that is a 503, and the client's retry is
        made safe by its idempotency key.
        """
        if write:
            checks.flush()  # a refused session or an exhausted limit writes nothing
        reconnected = False
        ends = time.monotonic() + min(timebudget.left(), self._unit_seconds)
        for attempt in range(1, MAX_ATTEMPTS + 1):
            if ends - time.monotonic() <= 0:
                raise ServiceUnavailable("the database did not answer in time")
            conn = self._take()
            healthy = True
            committing = False
            try:
                self.dialect.fit(conn, ends - time.monotonic())
                tx = Tx(conn, self.dialect, write=write)
                result = work(tx)
                committing = write
                if tx.open:  # a read is autocommitted (MySQL) or took no transaction (SQLite)
                    count_statement("COMMIT")
                    conn.commit()
                return result
            except Exception as exc:
                # One classification for every step: BEGIN, the work, COMMIT.
                failure = classify(self.dialect, exc)
                if isinstance(failure, _Retryable):
                    healthy = _rollback(conn)
                    if attempt == MAX_ATTEMPTS:
                        raise ServiceUnavailable("the database is busy") from None
                    time.sleep(random.uniform(0, 0.005 * 2**attempt))
                    continue
                if not isinstance(failure, _ConnectionLost):
                    healthy = _rollback(conn)
                    raise
                healthy = False
                if committing or reconnected:
                    raise ServiceUnavailable("the database connection was lost") from None
                reconnected = True
                log.warning("database connection lost; reconnecting")
            finally:
                if healthy:
                    self._give_back(conn)
                else:
                    _close(conn)
        raise AssertionError("unreachable")

    def ping(self) -> bool:
        try:
            self.run(lambda tx: tx.one("SELECT 1"), write=False)
            return True
        except ServiceUnavailable:
            return False


def _rollback(conn: Any) -> bool:
    """Roll back; False when the connection is not fit to be used again."""
    try:
        conn.rollback()
        return True
    except Exception:
        return False


def _close(conn: Any) -> None:
    try:
        conn.close()
    except Exception:
        pass
