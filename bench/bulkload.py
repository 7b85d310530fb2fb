"""Fill an empty bench database with N messages by writing rows straight
into its tables, not through the API (a million sends would take far too
long).

The rows are what the app would have written for the recipients: every
message is a direct message with the recipient's inbox row (its sender's
own row is left out: the reads measured are the recipients'); each user's seqs are 1..n without gaps, in
sent_at order; inbox_counters.last_seq is each user's n. A few "readers"
get the same READER_INBOX messages at every size (the generator is seeded
and makes theirs first), so the reads measured return the same rows and only
the tables around them grow. The other messages go round-robin to the other
users, from random senders.
"""
from __future__ import annotations

import os
import random
import tempfile
import time
import uuid
from datetime import datetime, timedelta
from typing import Any, Dict, List, Sequence, Tuple

USERS = 10_000
READERS = 5
READER_INBOX = 1_000
INSERT_BATCH = 5_000  # rows per multi-row INSERT, if LOAD DATA is refused
BASE_TIME = datetime(2024, 1, 1)


def db_time(moment: datetime) -> str:
    return moment.isoformat(" ", "microseconds")


class Loader:
    def __init__(self, conn: Any, *, seed: int = 1) -> None:
        self.conn = conn
        self.rng = random.Random(seed)
        self.users = [self._uuid() for _ in range(USERS)]
        self.readers = self.users[:READERS]
        self.others = self.users[READERS:]
        self.last_seq: Dict[str, int] = {u: 0 for u in self.users}
        self.sent_at: Dict[Tuple[str, int], str] = {}  # (reader, seq) -> sent_at, for min_timestamp reads
        self.use_infile = True

    def _uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def load(self, total: int) -> Dict[str, float]:
        """Write the users and `total` messages; returns the seconds each part took."""
        assert total >= READERS * READER_INBOX
        timings: Dict[str, float] = {}
        started = t = time.perf_counter()
        recipients = [self.readers[n % READERS] for n in range(READERS * READER_INBOX)]
        recipients += [self.others[n % len(self.others)] for n in range(total - len(recipients))]
        messages, inbox = [], []
        for n, recipient in enumerate(recipients):
            sender = self.users[self.rng.randrange(USERS)]
            while sender == recipient:
                sender = self.users[self.rng.randrange(USERS)]
            message_id = self._uuid()
            sent_at = db_time(BASE_TIME + timedelta(seconds=n))
            seq = self.last_seq[recipient] = self.last_seq[recipient] + 1
            if n < READERS * READER_INBOX:
                self.sent_at[(recipient, seq)] = sent_at
            messages.append((message_id, sender, recipient, f"bulk message {n}", sent_at))
            inbox.append((recipient, seq, message_id, sent_at, sender))
        messages.sort()  # primary key order
        inbox.sort()
        timings["generate_s"] = time.perf_counter() - t

        with self.conn.cursor() as cur:
            # The generator guarantees keys and references. Without these
            # checks, InnoDB also loads an empty table in bulk (sorted index
            # builds, MariaDB 10.6+): several times faster than row by row.
            cur.execute("SET SESSION foreign_key_checks = 0, unique_checks = 0")
        now = db_time(BASE_TIME)
        for table, columns, rows in (
            ("users", ("id", "name", "created_at"), [(u, f"user{n}", now) for n, u in enumerate(self.users)]),
            ("inbox_counters", ("user_id", "last_seq"), sorted(self.last_seq.items())),
            # Each user's one session, whose id is the user's own (tokens: signer.issue(user, user)).
            ("sessions", ("id", "user_id", "device_name", "created_at"), [(u, u, "bench", now) for u in self.users]),
            ("messages", ("id", "sender_id", "recipient_id", "body", "sent_at"), messages),
            ("inbox", ("user_id", "seq", "message_id", "sent_at", "peer_id"), inbox),
        ):
            t = time.perf_counter()
            self._load(table, columns, rows)
            timings[f"{table}_s"] = time.perf_counter() - t
        t = time.perf_counter()
        with self.conn.cursor() as cur:
            # Fresh statistics, as a long-lived production table has them.
            for table in ("users", "inbox_counters", "messages", "inbox"):
                cur.execute(f"ANALYZE TABLE {table}")
                cur.fetchall()
        self.conn.commit()
        timings["analyze_s"] = time.perf_counter() - t
        timings["total_s"] = time.perf_counter() - started
        return {k: round(v, 2) for k, v in timings.items()}

    def _load(self, table: str, columns: Sequence[str], rows: List[Tuple[Any, ...]]) -> None:
        """One transaction per table: one LOAD DATA LOCAL INFILE (InnoDB's
        bulk path covers only the statement that finds the table empty:
        100k-row chunks made the 1M load 8x slower), or multi-row INSERTs when
        the server refuses local files."""
        import pymysql

        if self.use_infile:
            try:
                self._load_infile(table, columns, rows)
                self.conn.commit()
                return
            except pymysql.err.MySQLError as exc:
                self.conn.rollback()
                print(f"  LOAD DATA LOCAL refused ({exc.args[0]}); using multi-row INSERTs", flush=True)
                self.use_infile = False
        marks = ", ".join(["%s"] * len(columns))
        with self.conn.cursor() as cur:
            for i in range(0, len(rows), INSERT_BATCH):
                cur.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})",
                                rows[i:i + INSERT_BATCH])
        self.conn.commit()

    def _load_infile(self, table: str, columns: Sequence[str], rows: List[Tuple[Any, ...]]) -> None:
        # The generated values hold no tabs, newlines or backslashes: plain TSV.
        fd, path = tempfile.mkstemp(suffix=".tsv")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.writelines("\t".join(map(str, row)) + "\n" for row in rows)
            with self.conn.cursor() as cur:
                cur.execute(f"LOAD DATA LOCAL INFILE %s INTO TABLE {table} CHARACTER SET utf8mb4"
                            f" ({', '.join(columns)})", (path,))
        finally:
            os.unlink(path)
