"""Where the database is and how its two dialects differ: connection targets,
URL and TLS parsing, connecting, placeholders and table options, which
driver error is which, how a batch of statements travels, and the few
statements whose SQL differs (taking seqs for many streams: a multi-table
UPDATE, GROUP_CONCAT). Repositories hold all
other SQL; they ask the dialect for these."""
from __future__ import annotations

import math
import os
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union
from urllib.parse import parse_qs, unquote, urlsplit

from . import timebudget
from .errors import ServiceUnavailable
from .metering import count_statement
from .secrets import SecretStore, database_credentials
from .settings import DATA_DIR, PROJECT_ROOT, Settings, private_dir

RDS_CA_BUNDLE = "chalicelib/certs/rds-ca-bundle.pem"  # Amazon RDS CAs and Amazon root CAs (RDS Proxy)

# Room for 'user_id:seq,' of the largest group allowed (10,000 members, ~50 bytes each): seqs_as_text.
GROUP_CONCAT_BYTES = 4 * 1024 * 1024

# What a driver error means to a unit of work (db.Database.run decides what to do).
DUPLICATE = "duplicate"  # a unique or primary key already holds the value
MISSING_REFERENCE = "missing_reference"  # a foreign key points at no row
RETRYABLE = "retryable"  # lost a lock conflict: deadlock, lock wait timeout, busy
LOST = "lost"  # the connection is gone


def to_db_time(moment: datetime) -> str:
    """UTC, always six fractional digits, so SQLite's text comparison orders correctly."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
    return moment.isoformat(sep=" ", timespec="microseconds")


def from_db_time(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


Statement = Tuple[str, Sequence[Any]]  # SQL with %s placeholders, and its parameters


@dataclass(frozen=True)
class Result:
    """What one statement of a batch did."""

    rowcount: int
    lastrowid: Optional[int]
    rows: List[Tuple[Any, ...]]


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
    inbox_by_peer = "inbox FORCE INDEX (ix_inbox_peer)"  # the inbox read through ix_inbox_peer alone
    insert_ignore = "INSERT IGNORE"  # a row whose key is there already is skipped, not an error
    table_options = " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"
    _KINDS = {
        1062: DUPLICATE,
        1452: MISSING_REFERENCE, 1216: MISSING_REFERENCE,
        1213: RETRYABLE, 1205: RETRYABLE,  # deadlock, lock wait timeout
        # lost, gone away, killed, shut down, idle-disconnected
        2006: LOST, 2013: LOST, 2055: LOST, 1927: LOST, 1053: LOST, 4031: LOST, 0: LOST,
    }

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
            arn = self._settings.db_secret_arn
            return database_credentials(arn, self._secrets.get(arn, refresh=refresh))
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
        if timebudget.left() <= 0:
            raise ServiceUnavailable("the database did not answer in time")
        # Every session setting travels in one init command, and autocommit
        # is the server's default: a new connection costs the handshake, the
        # driver's SET NAMES and this one statement, nothing more.
        conn = self._pymysql.connect(
            host=t.host, port=t.port, user=user, password=password,
            database=t.database, unix_socket=t.unix_socket,
            charset="utf8mb4", autocommit=True,
            # The greeting is read under the read timeout: both fit the budget.
            connect_timeout=timebudget.cap(s.db_connect_timeout),
            read_timeout=timebudget.cap(s.db_read_timeout), write_timeout=timebudget.cap(s.db_write_timeout),
            # Strict mode: too-long or invalid data is an error, never
            # truncated. Lock waits end (as a retryable error) well before the
            # socket read timeout. A fan-out's seqs come back as one text (see
            # seqs_as_text; MySQL's default is 1 KB). Each statement sees the
            # latest commits and takes no gap locks.
            init_command=(f"SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION',"
                          f" innodb_lock_wait_timeout = {self.lock_wait_seconds():d},"
                          f" group_concat_max_len = {GROUP_CONCAT_BYTES:d};"
                          " SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED"),
            # A send's statements travel in one packet (Tx.batch); every value
            # in them is still escaped by the driver, never pasted in.
            client_flag=self._pymysql.constants.CLIENT.MULTI_STATEMENTS,
            **self._tls(),
        )
        conn.lock_wait = self.lock_wait_seconds()
        return conn

    def lock_wait_seconds(self) -> int:
        return max(1, int(self._settings.db_read_timeout / 2))

    def fit(self, conn: Any, seconds: float) -> None:
        """Make the connection's waits end within `seconds`: socket reads and
        writes, and lock waits (whole seconds, below the read timeout)."""
        s = self._settings
        # PyMySQL applies these to the socket before each read and write.
        conn._read_timeout = min(s.db_read_timeout, seconds)
        conn._write_timeout = min(s.db_write_timeout, seconds)
        wait = self.lock_wait_seconds() if math.isinf(seconds) else max(1, min(self.lock_wait_seconds(),
                                                                             math.floor(seconds / 2)))
        if wait != getattr(conn, "lock_wait", None):
            with conn.cursor() as cur:
                count_statement("SET SESSION innodb_lock_wait_timeout")
                cur.execute("SET SESSION innodb_lock_wait_timeout = %s", (wait,))
            conn.lock_wait = wait

    def begin(self, conn: Any) -> Optional[str]:
        """The statement that opens a write's transaction, sent in one packet
        with its first statement (Tx): a read is one autocommitted
        statement, a write its statements and COMMIT, no BEGIN of its own."""
        return "START TRANSACTION"

    def classify(self, exc: BaseException) -> Optional[str]:
        """DUPLICATE, MISSING_REFERENCE, RETRYABLE, LOST, or None for any other error."""
        err = self._pymysql.err
        if isinstance(exc, err.InterfaceError):
            return LOST
        if not isinstance(exc, (err.IntegrityError, err.OperationalError)) or not exc.args:
            return None
        kind = self._KINDS.get(exc.args[0])
        integrity = isinstance(exc, err.IntegrityError)
        return kind if (kind in (DUPLICATE, MISSING_REFERENCE)) == integrity else None

    # ------------------------------------------------------------ the SQL that differs

    def take_member_seqs(self, *, group_id: str, marker: str, unless_blocking: Optional[str]) -> Statement:
        """The next seq of every member, marked with `marker`, in one
        statement whatever the group's size. For a message (`unless_blocking`
        is its sender): not of those who block the sender, and only if the
        message row exists (the sender is a member); else (a join or a
        leave) only if this write changed the member count (chat_groups.
        changed_by is `marker`). STRAIGHT_JOIN: counters lock in user_id
        order (the group_members key), so fan-outs never deadlock with each other."""
        if unless_blocking is None:
            return ("UPDATE group_members m STRAIGHT_JOIN inbox_counters c ON c.user_id = m.user_id"
                    " SET c.last_seq = c.last_seq + 1, c.last_message_id = %s WHERE m.group_id = %s"
                    " AND EXISTS (SELECT 1 FROM chat_groups g WHERE g.id = %s AND g.changed_by = %s)",
                    (marker, group_id, group_id, marker))
        return ("UPDATE group_members m STRAIGHT_JOIN inbox_counters c ON c.user_id = m.user_id"
                " LEFT JOIN blocks b ON b.blocker_id = m.user_id AND b.blocked_id = %s"
                " SET c.last_seq = c.last_seq + 1, c.last_message_id = %s"
                " WHERE m.group_id = %s AND b.blocker_id IS NULL"
                " AND EXISTS (SELECT 1 FROM messages x WHERE x.id = %s)",
                (unless_blocking, marker, group_id, marker))

    def take_holder_seqs(self, *, message_id: str, marker: str, changed: str, at: str) -> Statement:
        """The next seq of every stream that holds the message, if its
        `changed` column (edited_at or deleted_at) holds `at`: only when this
        write changed it. Counters lock in user_id order (ix_inbox_message's)."""
        assert changed in ("edited_at", "deleted_at")
        return ("UPDATE inbox i STRAIGHT_JOIN inbox_counters c ON c.user_id = i.user_id"
                " SET c.last_seq = c.last_seq + 1, c.last_message_id = %s WHERE i.message_id = %s"
                f" AND EXISTS (SELECT 1 FROM messages x WHERE x.id = %s AND x.{changed} = %s)",
                (marker, message_id, message_id, at))

    def seqs_as_text(self, user_id: str, seq: str) -> str:
        """One text of 'user_id:seq,...' over a group's rows (group_concat_max_len is raised at connect)."""
        return f"GROUP_CONCAT({user_id}, ':', {seq} SEPARATOR ',')"

    def batch(self, cur: Any, statements: Sequence[Tuple[str, Sequence[Any]]]) -> List[Any]:
        raw = cur._cursor  # the counting cursor counts the batch as one round trip
        sql = ";\n".join(raw.mogrify(statement, params) for statement, params in statements)
        for n, (statement, params) in enumerate(statements):
            count_statement(statement, params, round_trip=n == 0)
        raw.execute(sql)
        results = []
        while True:
            results.append(Result(raw.rowcount, raw.lastrowid, list(raw.fetchall() or ())))
            if not raw.nextset():
                return results


class SQLiteDialect:
    name = "sqlite"
    placeholder = "?"
    inbox_by_peer = "inbox INDEXED BY ix_inbox_peer"
    insert_ignore = "INSERT OR IGNORE"
    table_options = ""

    def __init__(self, settings: Settings) -> None:
        self.path = Path(settings.database_url[len("sqlite:///"):])
        self._busy_timeout = settings.db_read_timeout

    def connect(self) -> Any:
        private_file(self.path)
        # isolation_level=None: we issue BEGIN IMMEDIATE ourselves for writes.
        # check_same_thread=False: the pool hands a connection to one thread at a time.
        conn = sqlite3.connect(str(self.path), timeout=self._busy_timeout, isolation_level=None,
                               check_same_thread=False)
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA synchronous = NORMAL")
        # WAL lets readers run beside the writer; the mode is stored in the
        # file, so only the first connection to a new file switches it.
        if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            conn.execute("PRAGMA journal_mode = WAL")
        return conn

    def begin(self, conn: Any) -> Optional[str]:
        # Take the write lock up front so two writers never deadlock on
        # upgrade (in-process: nothing to send with the first statement).
        conn.execute("BEGIN IMMEDIATE")
        return None

    def fit(self, conn: Any, seconds: float) -> None:
        """The embedded default waits for a busy file under its own timeout."""

    def classify(self, exc: BaseException) -> Optional[str]:
        name = getattr(exc, "sqlite_errorname", "")
        if isinstance(exc, sqlite3.IntegrityError):
            if name in ("SQLITE_CONSTRAINT_UNIQUE", "SQLITE_CONSTRAINT_PRIMARYKEY"):
                return DUPLICATE
            if name == "SQLITE_CONSTRAINT_FOREIGNKEY":
                return MISSING_REFERENCE
        if isinstance(exc, sqlite3.OperationalError) and name.startswith("SQLITE_BUSY"):
            return RETRYABLE
        return None

    # ------------------------------------------------------------ the SQL that differs

    def take_member_seqs(self, *, group_id: str, marker: str, unless_blocking: Optional[str]) -> Statement:
        """As MySQL's; SQLite has no multi-table UPDATE (and one writer at a time: no lock order)."""
        if unless_blocking is None:
            return ("UPDATE inbox_counters SET last_seq = last_seq + 1, last_message_id = %s"
                    " WHERE user_id IN (SELECT user_id FROM group_members WHERE group_id = %s)"
                    " AND EXISTS (SELECT 1 FROM chat_groups g WHERE g.id = %s AND g.changed_by = %s)",
                    (marker, group_id, group_id, marker))
        return ("UPDATE inbox_counters SET last_seq = last_seq + 1, last_message_id = %s"
                " WHERE user_id IN (SELECT m.user_id FROM group_members m"
                " LEFT JOIN blocks b ON b.blocker_id = m.user_id AND b.blocked_id = %s"
                " WHERE m.group_id = %s AND b.blocker_id IS NULL)"
                " AND EXISTS (SELECT 1 FROM messages x WHERE x.id = %s)",
                (marker, unless_blocking, group_id, marker))

    def take_holder_seqs(self, *, message_id: str, marker: str, changed: str, at: str) -> Statement:
        """As MySQL's."""
        assert changed in ("edited_at", "deleted_at")
        return ("UPDATE inbox_counters SET last_seq = last_seq + 1, last_message_id = %s"
                " WHERE user_id IN (SELECT user_id FROM inbox WHERE message_id = %s)"
                f" AND EXISTS (SELECT 1 FROM messages x WHERE x.id = %s AND x.{changed} = %s)",
                (marker, message_id, message_id, at))

    def seqs_as_text(self, user_id: str, seq: str) -> str:
        return f"group_concat({user_id} || ':' || {seq}, ',')"

    def batch(self, cur: Any, statements: Sequence[Tuple[str, Sequence[Any]]]) -> List[Any]:
        results = []
        for statement, params in statements:  # in-process: a round trip costs nothing to save
            cur.execute(statement, params)
            rows = cur.fetchall()
            results.append(Result(cur.rowcount, cur.lastrowid, list(rows)))
        return results


Dialect = Union[MySQLDialect, SQLiteDialect]


def private_file(path: Path) -> None:
    """Create the SQLite file readable and writable by its owner only (SQLite
    gives its -wal and -shm files the file's mode), and the project's data/
    folder (the embedded default's home) usable by its owner only. Files of
    an older checkout are tightened too. Every message is in there."""
    if path.parent == DATA_DIR:
        private_dir(DATA_DIR)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
    os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o600))
    for file in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        try:
            if file.stat().st_mode & 0o077:
                file.chmod(0o600)
        except FileNotFoundError:
            pass


def dialect_for(settings: Settings, secrets: Optional[SecretStore] = None) -> Dialect:
    url = settings.database_url
    if url.startswith("sqlite:///"):
        return SQLiteDialect(settings)
    if url.startswith("mysql://"):
        return MySQLDialect(settings, secrets)
    raise ValueError("DATABASE_URL must start with mysql:// or sqlite:///")
