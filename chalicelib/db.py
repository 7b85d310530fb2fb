"""Database access: one lazily opened connection per thread (so one per Lambda
container), units of work with bounded retries, and the few differences
between MySQL and SQLite, all in this module."""
from __future__ import annotations

import logging
import random
import sqlite3
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple, TypeVar
from urllib.parse import parse_qs, unquote, urlsplit

from .errors import ServiceUnavailable
from .secrets import SecretStore, database_credentials
from .settings import PROJECT_ROOT, Settings

log = logging.getLogger(__name__)
T = TypeVar("T")

RDS_CA_BUNDLE = "chalicelib/certs/rds-ca-bundle.pem"  # Amazon RDS CAs and Amazon root CAs (RDS Proxy)
MAX_ATTEMPTS = 4  # a deadlock or lost lock wait is retried this many times in all


class DuplicateKey(Exception):
    """A unique or primary key already holds this value."""


class MissingReference(Exception):
    """A foreign key points at a row that does not exist."""


class _Retryable(Exception):
    """The transaction lost a lock conflict (deadlock, lock wait timeout)."""


class _ConnectionLost(Exception):
    pass


def to_db_time(moment: datetime) -> str:
    """UTC, always six fractional digits, so SQLite's text comparison orders correctly."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
    return moment.isoformat(sep=" ", timespec="microseconds")


def from_db_time(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


# --------------------------------------------------------------------------- dialects


@dataclass(frozen=True)
class MySQLTarget:
    host: str
    port: int
    user: str
    password: str
    database: str
    unix_socket: Optional[str]
    tls: str  # "off" | "verify"
    tls_ca: str  # CA bundle to verify the server against


def parse_mysql_url(url: str) -> MySQLTarget:
    parts = urlsplit(url)
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    host = parts.hostname or "127.0.0.1"
    socket_path = query.get("unix_socket")
    loopback = socket_path is not None or host in ("127.0.0.1", "localhost", "::1")
    tls = query.get("tls", "off" if loopback else "verify")
    if tls not in ("off", "verify"):
        raise ValueError("DATABASE_URL tls must be 'off' or 'verify'")
    tls_ca = Path(query.get("tls_ca") or RDS_CA_BUNDLE)
    if not tls_ca.is_absolute():  # relative to the project, as deployed
        tls_ca = PROJECT_ROOT / tls_ca
    return MySQLTarget(
        host=host,
        port=parts.port or 3306,
        user=unquote(parts.username or "root"),
        password=unquote(parts.password or ""),
        database=parts.path.lstrip("/"),
        unix_socket=socket_path,
        tls=tls,
        tls_ca=str(tls_ca),
    )


class MySQLDialect:
    name = "mysql"
    placeholder = "%s"
    table_options = " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"
    # 1213 deadlock, 1205 lock wait timeout
    _RETRYABLE = {1213, 1205}
    # lost, gone away, killed, shut down, idle-disconnected
    _LOST = {2006, 2013, 2055, 1927, 1053, 4031, 0}

    def __init__(self, settings: Settings, secrets: Optional[SecretStore] = None) -> None:
        import pymysql  # imported here so the SQLite default never loads it

        self._pymysql = pymysql
        self._settings = settings
        self._secrets = secrets or SecretStore()
        self.target = parse_mysql_url(settings.database_url)
        self._tls_context: Any = None

    def _tls(self) -> Dict[str, Any]:
        if self.target.tls == "off":
            return {"ssl_disabled": True}
        if self._tls_context is None:  # built once: a context per connect costs tens of ms
            import ssl

            self._tls_context = ssl.create_default_context(cafile=self.target.tls_ca)
        return {"ssl": self._tls_context}

    def _credentials(self, *, refresh: bool) -> Tuple[str, str]:
        if self._settings.db_secret_arn:
            return database_credentials(self._secrets.get(self._settings.db_secret_arn, refresh=refresh))
        return self.target.user, self.target.password

    def connect(self) -> Any:
        try:
            return self._connect(refresh=False)
        except self._pymysql.err.MySQLError as exc:
            # Access denied with a secret-managed password: it may have been
            # rotated since we fetched it. Fetch it again, once.
            if not (self._settings.db_secret_arn and exc.args and exc.args[0] == 1045):
                raise ServiceUnavailable("the database cannot be reached") from exc
        try:
            return self._connect(refresh=True)
        except self._pymysql.err.MySQLError as exc:
            raise ServiceUnavailable("the database cannot be reached") from exc

    def _connect(self, *, refresh: bool) -> Any:
        t, s = self.target, self._settings
        user, password = self._credentials(refresh=refresh)
        conn = self._pymysql.connect(
            host=t.host, port=t.port, user=user, password=password,
            database=t.database, unix_socket=t.unix_socket,
            charset="utf8mb4", autocommit=False,
            connect_timeout=s.db_connect_timeout,
            read_timeout=s.db_read_timeout, write_timeout=s.db_write_timeout,
            # Strict mode: too-long or invalid data is an error, never truncated.
            sql_mode="STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION",
            # Each statement sees the latest commits and takes no gap locks.
            init_command="SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED",
            **self._tls(),
        )
        try:
            with conn.cursor() as cur:
                # End lock waits (as a retryable error) well before the socket read timeout.
                cur.execute("SET SESSION innodb_lock_wait_timeout = %s", (self.lock_wait_seconds(),))
        except BaseException:
            conn.close()
            raise
        return conn

    def lock_wait_seconds(self) -> int:
        return max(1, int(self._settings.db_read_timeout / 2))

    def begin(self, conn: Any) -> None:
        # autocommit is off: the first statement opens the transaction.
        pass

    def translate(self, exc: BaseException) -> BaseException:
        err = self._pymysql.err
        if isinstance(exc, err.InterfaceError):
            return _ConnectionLost(str(exc))
        code = exc.args[0] if isinstance(exc, err.MySQLError) and exc.args else None
        if isinstance(exc, err.IntegrityError):
            if code == 1062:
                return DuplicateKey()
            if code in (1452, 1216):
                return MissingReference()
        if isinstance(exc, err.OperationalError):
            if code in self._RETRYABLE:
                return _Retryable()
            if code in self._LOST:
                return _ConnectionLost(str(code))
        return exc

    def advance_one(self, cur: Any, sql: str, params: Sequence[Any]) -> Optional[int]:
        # LAST_INSERT_ID(expr) hands the new value back in the OK packet: no SELECT.
        cur.execute(sql.replace("{next_seq}", "LAST_INSERT_ID(last_seq + 1)"), params)
        return cur.lastrowid if cur.rowcount == 1 else None

    def advance_many(self, cur: Any, user_ids: Sequence[str]) -> Dict[str, int]:
        marks = ", ".join(["%s"] * len(user_ids))
        cur.execute(f"UPDATE inbox_counters SET last_seq = last_seq + 1 WHERE user_id IN ({marks})", user_ids)
        cur.execute(f"SELECT user_id, last_seq FROM inbox_counters WHERE user_id IN ({marks})", user_ids)
        return dict(cur.fetchall())


class SQLiteDialect:
    name = "sqlite"
    placeholder = "?"
    table_options = ""

    def __init__(self, settings: Settings) -> None:
        self.path = Path(settings.database_url[len("sqlite:///"):])
        self._busy_timeout = settings.db_read_timeout

    def connect(self) -> Any:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: we issue BEGIN IMMEDIATE ourselves for writes.
        conn = sqlite3.connect(str(self.path), timeout=self._busy_timeout, isolation_level=None)
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA synchronous = NORMAL")
        # WAL lets readers run beside the writer; the mode is stored in the
        # file, so only the first connection to a new file switches it.
        if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            conn.execute("PRAGMA journal_mode = WAL")
        return conn

    def begin(self, conn: Any) -> None:
        # Take the write lock up front so two writers never deadlock on upgrade.
        conn.execute("BEGIN IMMEDIATE")

    def translate(self, exc: BaseException) -> BaseException:
        name = getattr(exc, "sqlite_errorname", "")
        if isinstance(exc, sqlite3.IntegrityError):
            if name in ("SQLITE_CONSTRAINT_UNIQUE", "SQLITE_CONSTRAINT_PRIMARYKEY"):
                return DuplicateKey()
            if name == "SQLITE_CONSTRAINT_FOREIGNKEY":
                return MissingReference()
        if isinstance(exc, sqlite3.OperationalError) and name.startswith("SQLITE_BUSY"):
            return _Retryable()
        return exc

    def advance_one(self, cur: Any, sql: str, params: Sequence[Any]) -> Optional[int]:
        cur.execute(sql.replace("{next_seq}", "last_seq + 1") + " RETURNING last_seq", params)
        row = cur.fetchone()
        return row[0] if row else None

    def advance_many(self, cur: Any, user_ids: Sequence[str]) -> Dict[str, int]:
        marks = ", ".join(["?"] * len(user_ids))
        cur.execute(
            f"UPDATE inbox_counters SET last_seq = last_seq + 1 WHERE user_id IN ({marks})"
            " RETURNING user_id, last_seq",
            user_ids,
        )
        return dict(cur.fetchall())


def dialect_for(settings: Settings, secrets: Optional[SecretStore] = None):
    url = settings.database_url
    if url.startswith("sqlite:///"):
        return SQLiteDialect(settings)
    if url.startswith("mysql://"):
        return MySQLDialect(settings, secrets)
    raise ValueError("DATABASE_URL must start with mysql:// or sqlite:///")


# --------------------------------------------------------------------------- units of work


_counts = threading.local()


def statements_sent() -> int:
    """Statements this thread has sent to the database (for request logs)."""
    return getattr(_counts, "n", 0)


def _count() -> None:
    _counts.n = statements_sent() + 1


class _CountingCursor:
    def __init__(self, cursor: Any) -> None:
        self._cursor = cursor

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        _count()
        return self._cursor.execute(sql, params)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> Any:
        _count()
        return self._cursor.executemany(sql, rows)

    def __getattr__(self, name: str) -> Any:  # fetchone, fetchall, rowcount, lastrowid
        return getattr(self._cursor, name)


class Tx:
    """The statements of one unit of work. SQL is written with %s placeholders."""

    def __init__(self, conn: Any, dialect: Any) -> None:
        self._dialect = dialect
        self._cur = _CountingCursor(conn.cursor())
        self._sqlite = dialect.placeholder == "?"

    def _sql(self, sql: str) -> str:
        return sql.replace("%s", "?") if self._sqlite else sql

    def _call(self, fn: Callable[..., T], *args: Any) -> T:
        try:
            return fn(*args)
        except Exception as exc:
            translated = self._dialect.translate(exc)
            if translated is exc:
                raise
            raise translated from exc

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        self._call(self._cur.execute, self._sql(sql), tuple(params))
        return self._cur.rowcount

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        # PyMySQL turns INSERT ... VALUES into one multi-row statement.
        self._call(self._cur.executemany, self._sql(sql), [tuple(r) for r in rows])

    def one(self, sql: str, params: Sequence[Any] = ()) -> Optional[Tuple[Any, ...]]:
        self.execute(sql, params)
        return self._cur.fetchone()

    def all(self, sql: str, params: Sequence[Any] = ()) -> List[Tuple[Any, ...]]:
        self.execute(sql, params)
        return list(self._cur.fetchall())

    def advance_one(self, sql: str, params: Sequence[Any]) -> Optional[int]:
        """Run an UPDATE of inbox_counters whose SET is `last_seq = {next_seq}`
        and return the new last_seq, or None when no row matched."""
        return self._call(self._dialect.advance_one, self._cur, self._sql(sql), tuple(params))

    def advance_many(self, user_ids: Sequence[str]) -> Dict[str, int]:
        return self._call(self._dialect.advance_many, self._cur, list(user_ids))


class Database:
    def __init__(
        self, settings: Settings, *, auto_migrate: bool = False, secrets: Optional[SecretStore] = None
    ) -> None:
        self.dialect = dialect_for(settings, secrets)
        self._settings = settings
        self._local = threading.local()
        self._migrated = not auto_migrate
        self._migrate_lock = threading.Lock()

    @property
    def kind(self) -> str:
        return self.dialect.name

    def _connection(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            if not self._migrated:
                self._migrate_once()
            conn = self.dialect.connect()
            self._local.conn = conn
        return conn

    def _migrate_once(self) -> None:
        """The embedded default migrates itself; every other thread waits
        until the schema is there, and a failed attempt is tried again."""
        with self._migrate_lock:
            if self._migrated:
                return
            from .migrate import apply_migrations

            own = Database(self._settings)  # SQLite only: no secrets involved
            try:
                apply_migrations(own)
            finally:
                own.close()
            self._migrated = True

    def _discard(self) -> None:
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            try:
                conn.close()
            except Exception:
                pass

    def close(self) -> None:
        """Close this thread's connection (tests, shutdown)."""
        self._discard()

    def run(self, work: Callable[[Tx], T], *, write: bool) -> T:
        """Run `work` as one transaction and commit it.

        Deadlocks and lock wait timeouts are retried with jittered back-off.
        A connection found dead before the commit is replaced and the work
        retried once (the server rolled it back). A connection lost during the
        commit leaves the outcome unknown: that is a 503, and the client's
        retry is made safe by its idempotency key.
        """
        reconnected = False
        for attempt in range(1, MAX_ATTEMPTS + 1):
            conn = self._connection()
            committing = False
            try:
                if write:
                    self.dialect.begin(conn)
                result = work(Tx(conn, self.dialect))
                committing = True
                if getattr(conn, "in_transaction", True):  # SQLite reads have nothing to commit
                    _count()
                conn.commit()
                return result
            except Exception as exc:
                # One classification for every step: BEGIN, the work, COMMIT.
                failure = exc if isinstance(exc, (_Retryable, _ConnectionLost)) else self.dialect.translate(exc)
                if isinstance(failure, _Retryable):
                    self._rollback(conn)
                    if attempt == MAX_ATTEMPTS:
                        raise ServiceUnavailable("the database is busy") from None
                    time.sleep(random.uniform(0, 0.005 * 2**attempt))
                    continue
                if not isinstance(failure, _ConnectionLost):
                    self._rollback(conn)
                    raise
                self._discard()
                if committing or reconnected:
                    raise ServiceUnavailable("the database connection was lost") from None
                reconnected = True
                log.warning("database connection lost; reconnecting")
        raise AssertionError("unreachable")

    def _rollback(self, conn: Any) -> None:
        try:
            conn.rollback()
        except Exception:
            self._discard()

    def ping(self) -> bool:
        try:
            self.run(lambda tx: tx.one("SELECT 1"), write=False)
            return True
        except ServiceUnavailable:
            return False
