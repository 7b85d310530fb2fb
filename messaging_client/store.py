"""The client's local store, one SQLite file per profile: the cursor, every
message received or sent, conversations with unread counts, and the outbox.

A message is stored once (its message_id is the key; a note to self that
is both sent and received is one row), and received messages and the cursor
are written in one transaction, so the cursor never passes a message that
is not stored. The outbox holds each send with its idempotency key before it
goes out: a client that is killed and started again sends it again with the
same key, and the server delivers it once.

It also keeps the names of the users it has seen (from /users): shown in
place of ids, and asked again when a day old; a user /users leaves out is
kept as a deleted account. A store is one user's: opened for another user it
refuses (StoreOfAnotherUser).
"""
from __future__ import annotations

import os
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional

from .api import User

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS messages (
    message_id TEXT PRIMARY KEY,
    seq INTEGER UNIQUE,                 -- this user's inbox seq; NULL for a message only sent
    conversation TEXT NOT NULL,         -- 'direct:<other user>' or 'group:<group>'
    kind TEXT NOT NULL,
    sender_id TEXT NOT NULL,
    group_id TEXT,
    text TEXT NOT NULL,
    sent_at TEXT NOT NULL,
    outgoing INTEGER NOT NULL           -- 1: this user sent it
);
CREATE INDEX IF NOT EXISTS ix_messages_conversation ON messages (conversation, sent_at);
CREATE TABLE IF NOT EXISTS conversations (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    target TEXT NOT NULL,               -- the other user's id, or the group's
    read_seq INTEGER NOT NULL DEFAULT 0 -- incoming messages up to this seq are read
);
CREATE TABLE IF NOT EXISTS outbox (
    client_message_id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,                 -- 'direct' or 'group'
    target TEXT NOT NULL,
    text TEXT NOT NULL,
    queued_at REAL NOT NULL,
    state TEXT NOT NULL,                -- 'pending', 'sent' or 'failed'
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL,
    message_id TEXT,
    error TEXT
);
CREATE TABLE IF NOT EXISTS users (
    user_id TEXT PRIMARY KEY,
    user_name TEXT,                     -- NULL: /users left the user out (a deleted account)
    handle TEXT,
    fetched_at REAL NOT NULL            -- time.time() of the answer
);
"""

NAMES_MAX_AGE_SECONDS = 24 * 3600  # a name older than this is asked again


class StoreOfAnotherUser(Exception):
    """The store file holds another user's messages."""


def conversation_of(item: Dict[str, Any], me: str) -> str:
    """A received item's conversation: its group's, else its sender's (an inbox
    only holds direct messages sent to this user, so one from `me` is a note to self)."""
    if item.get("group_id"):
        return f"group:{item['group_id']}"
    return f"direct:{item['sender_id']}"


@dataclass(frozen=True)
class Conversation:
    id: str
    kind: str
    target: str
    unread: int
    last_text: Optional[str]
    last_at: Optional[str]


@dataclass(frozen=True)
class Name:
    """What /users said of a user, and when."""

    user_id: str
    user_name: Optional[str]  # None: a deleted account
    handle: Optional[str]
    fetched_at: float

    @property
    def deleted(self) -> bool:
        return self.user_name is None


@dataclass(frozen=True)
class Pending:
    client_message_id: str
    kind: str
    target: str
    text: str
    attempts: int
    next_attempt_at: float


class Store:
    def __init__(self, path: Path, user_id: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():  # messages are private: the file is its owner's only
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        self.path, self.me = path, user_id
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), timeout=10, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode = WAL")
        self._db.executescript(_SCHEMA)
        with self._tx() as db:
            row = db.execute("SELECT value FROM meta WHERE key = 'user_id'").fetchone()
            if row is None:  # a new store, or one from before stores recorded their user
                db.execute("INSERT INTO meta (key, value) VALUES ('user_id', ?)", (user_id,))
        if row is not None and row[0] != user_id:
            self._db.close()
            raise StoreOfAnotherUser(f"{path} is the store of user {row[0]}, not of {user_id}")

    def close(self) -> None:
        self._db.close()

    def _tx(self):
        return _Transaction(self._db, self._lock)

    # ------------------------------------------------------------------ the cursor

    @property
    def cursor(self) -> int:
        row = self._db.execute("SELECT value FROM meta WHERE key = 'cursor'").fetchone()
        return int(row[0]) if row else 0

    def apply(self, items: Iterable[Dict[str, Any]]) -> List[Dict[str, Any]]:
        """Store received items that continue the cursor, in one transaction;
        the new ones, in seq order. Items at or below the cursor are ones we
        have; an item past a gap is left for the cursor read that fills it."""
        new: List[Dict[str, Any]] = []
        with self._tx() as db:
            cursor = self.cursor  # read inside the transaction: the same connection
            for item in sorted(items, key=lambda i: i["seq"]):
                if item["seq"] <= cursor:
                    continue
                if item["seq"] != cursor + 1:
                    break
                conversation = conversation_of(item, self.me)
                db.execute(
                    "INSERT INTO messages (message_id, seq, conversation, kind, sender_id, group_id, text, sent_at,"
                    " outgoing) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0)"
                    " ON CONFLICT (message_id) DO UPDATE SET seq = excluded.seq",  # a note to self, sent before
                    (item["message_id"], item["seq"], conversation, item["kind"], item["sender_id"],
                     item.get("group_id"), item["text"], item["sent_at"]))
                self._touch(db, conversation)
                cursor = item["seq"]
                new.append(item)
            self._set_cursor(db, cursor)
        return new

    def rewind(self, newest_seq: int) -> None:
        """The server's newest seq is behind ours (its data was reset):
        forget what it no longer has and read on from there."""
        with self._tx() as db:
            db.execute("DELETE FROM messages WHERE seq > ?", (newest_seq,))
            self._set_cursor(db, newest_seq)

    @staticmethod
    def _set_cursor(db: sqlite3.Connection, cursor: int) -> None:
        db.execute("INSERT INTO meta (key, value) VALUES ('cursor', ?)"
                   " ON CONFLICT (key) DO UPDATE SET value = excluded.value", (str(cursor),))

    @staticmethod
    def _touch(db: sqlite3.Connection, conversation: str) -> None:
        kind, _, target = conversation.partition(":")
        db.execute("INSERT OR IGNORE INTO conversations (id, kind, target) VALUES (?, ?, ?)",
                   (conversation, kind, target))

    # ------------------------------------------------------------------ conversations

    def open_conversation(self, kind: str, target: str) -> str:
        conversation = f"{kind}:{target}"
        with self._tx() as db:
            self._touch(db, conversation)
        return conversation

    def has_conversation(self, conversation: str) -> bool:
        return self._db.execute("SELECT 1 FROM conversations WHERE id = ?", (conversation,)).fetchone() is not None

    def conversations(self) -> List[Conversation]:
        rows = self._db.execute(
            "SELECT c.id, c.kind, c.target,"
            " (SELECT COUNT(*) FROM messages m WHERE m.conversation = c.id AND m.outgoing = 0 AND m.seq > c.read_seq),"
            " (SELECT text FROM messages m WHERE m.conversation = c.id ORDER BY sent_at DESC LIMIT 1),"
            " (SELECT MAX(sent_at) FROM messages m WHERE m.conversation = c.id)"
            " FROM conversations c ORDER BY 6 DESC").fetchall()
        return [Conversation(*row) for row in rows]

    def history(self, conversation: str, limit: int = 100) -> List[Dict[str, Any]]:
        rows = self._db.execute(
            "SELECT message_id, seq, kind, sender_id, group_id, text, sent_at, outgoing FROM messages"
            " WHERE conversation = ? ORDER BY sent_at DESC, seq DESC LIMIT ?", (conversation, limit)).fetchall()
        keys = ("message_id", "seq", "kind", "sender_id", "group_id", "text", "sent_at", "outgoing")
        return [dict(zip(keys, row, strict=True)) for row in reversed(rows)]

    def mark_read(self, conversation: str) -> None:
        with self._tx() as db:
            db.execute("UPDATE conversations SET read_seq = COALESCE((SELECT MAX(seq) FROM messages"
                       " WHERE conversation = ?), read_seq) WHERE id = ?", (conversation, conversation))

    # ------------------------------------------------------------------ names

    def names(self, user_ids: Iterable[str]) -> Dict[str, Name]:
        """What is known of these users (any age); unknown ones are left out."""
        wanted = list(dict.fromkeys(user_ids))
        known: Dict[str, Name] = {}
        for start in range(0, len(wanted), 500):  # within SQLite's limit on parameters
            batch = wanted[start:start + 500]
            marks = ", ".join("?" * len(batch))
            for row in self._db.execute(f"SELECT user_id, user_name, handle, fetched_at FROM users"
                                        f" WHERE user_id IN ({marks})", batch):
                known[row[0]] = Name(*row)
        return known

    def remember_names(self, asked: Iterable[str], found: Iterable[User], *, now: Optional[float] = None) -> None:
        """/users' answer for `asked`: the users `found`, and the others as deleted accounts."""
        at = time.time() if now is None else now
        by_id = {u.user_id: u for u in found}
        rows = [(u, by_id[u].user_name if u in by_id else None, by_id[u].handle if u in by_id else None, at)
                for u in dict.fromkeys([*asked, *by_id])]
        with self._tx() as db:
            db.executemany("INSERT INTO users (user_id, user_name, handle, fetched_at) VALUES (?, ?, ?, ?)"
                           " ON CONFLICT (user_id) DO UPDATE SET user_name = excluded.user_name,"
                           " handle = excluded.handle, fetched_at = excluded.fetched_at", rows)

    # ------------------------------------------------------------------ the outbox

    def queue(self, kind: str, target: str, text: str) -> str:
        """Store a send before it goes out; its idempotency key."""
        key = f"c-{uuid.uuid4()}"
        with self._tx() as db:
            db.execute("INSERT INTO outbox (client_message_id, kind, target, text, queued_at, state,"
                       " next_attempt_at) VALUES (?, ?, ?, ?, ?, 'pending', 0)", (key, kind, target, text, time.time()))
            self._touch(db, f"{kind}:{target}")
        return key

    def pending(self, now: Optional[float] = None) -> List[Pending]:
        rows = self._db.execute(
            "SELECT client_message_id, kind, target, text, attempts, next_attempt_at FROM outbox"
            " WHERE state = 'pending' AND next_attempt_at <= ? ORDER BY queued_at",
            (time.time() if now is None else now,)).fetchall()
        return [Pending(*row) for row in rows]

    def next_due(self) -> Optional[float]:
        """When the earliest pending send is due (a time.time()), or None."""
        row = self._db.execute("SELECT MIN(next_attempt_at) FROM outbox WHERE state = 'pending'").fetchone()
        return row[0]

    def outbox_state(self, key: str) -> Dict[str, Any]:
        row = self._db.execute("SELECT state, attempts, message_id, error FROM outbox WHERE client_message_id = ?",
                               (key,)).fetchone()
        return dict(zip(("state", "attempts", "message_id", "error"), row, strict=True)) if row else {}

    def sent(self, key: str, message_id: str, sent_at: str) -> None:
        """The server acknowledged a send: record the message as ours."""
        with self._tx() as db:
            kind, target, text = db.execute("SELECT kind, target, text FROM outbox WHERE client_message_id = ?",
                                            (key,)).fetchone()
            db.execute("UPDATE outbox SET state = 'sent', message_id = ?, error = NULL WHERE client_message_id = ?",
                       (message_id, key))
            db.execute("INSERT INTO messages (message_id, seq, conversation, kind, sender_id, group_id, text,"
                       " sent_at, outgoing) VALUES (?, NULL, ?, ?, ?, ?, ?, ?, 1)"
                       " ON CONFLICT (message_id) DO UPDATE SET outgoing = 1",  # a note to self, received first
                       (message_id, f"{kind}:{target}", kind, self.me, target if kind == "group" else None, text,
                        sent_at))

    def retry_later(self, key: str, seconds: float, error: str) -> None:
        with self._tx() as db:
            db.execute("UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?, error = ?"
                       " WHERE client_message_id = ?", (time.time() + seconds, error, key))

    def failed(self, key: str, error: str) -> None:
        with self._tx() as db:
            db.execute("UPDATE outbox SET state = 'failed', error = ? WHERE client_message_id = ?", (error, key))


class _Transaction:
    def __init__(self, db: sqlite3.Connection, lock: threading.Lock) -> None:
        self._db, self._lock = db, lock

    def __enter__(self) -> sqlite3.Connection:
        self._lock.acquire()
        self._db.execute("BEGIN IMMEDIATE")
        return self._db

    def __exit__(self, kind: Any, *_: Any) -> None:
        try:
            self._db.execute("COMMIT" if kind is None else "ROLLBACK")
        finally:
            self._lock.release()
