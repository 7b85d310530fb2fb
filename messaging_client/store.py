"""The client's local store, one SQLite file per profile: the user's stream
read from /sync (its cursor, every message of both sides with its edits and
deletion, the server's read state, the other person's read receipts and
group memberships), conversations with unread counts, and the outbox.

A message is stored once (its message_id is the key; a note to self is one
row), and the events and the cursor are written in one transaction, so the
cursor never passes an event that is not applied. The outbox holds each send
with its idempotency key before it goes out: a client that is killed and
started again sends it again with the same key, and the server delivers it
once. A send's own `message` event, which comes back through the stream, is
matched to the message by its message_id (or, when it arrives before the
send's answer, to the pending send of the same text to the same
conversation), so it is shown once.

Attachments: a message keeps the files it carries (`attachments`, from its
event: id, type, size, name), emptied once it is deleted. A send with files
stays in the outbox until acknowledged, as any send: its files are kept by
path until each is uploaded, then by the attachment id the upload got (so a
retry, by this process or a later one, does not upload it again), and the
send goes with its idempotency key and those ids.

Read state is the server's: a `read` event (from any of the user's devices)
moves a conversation's marker forward, never back; unread counts the
messages from others past the marker that are not deleted. A `receipt`
moves the other person's marker in a direct conversation.

It also keeps the names of the users it has seen (from /users): shown in
place of ids, and asked again when a day old; a user /users leaves out is
kept as a deleted account. A store is one user's: opened for another user it
refuses (StoreOfAnotherUser). A store written by an older client (whose
cursor was /read_messages', which skips the user's own messages and the
other events) reads the stream again from the start when opened.
"""
from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

from .api import User

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS messages (
    message_id TEXT PRIMARY KEY,
    seq INTEGER UNIQUE,                 -- its `message` event's seq in this user's stream; NULL until it came
    conversation TEXT NOT NULL,         -- 'direct:<other user>' or 'group:<group>'
    kind TEXT NOT NULL,
    sender_id TEXT NOT NULL,
    group_id TEXT,
    text TEXT NOT NULL,                 -- '' once deleted (the server erases it)
    sent_at TEXT NOT NULL,
    outgoing INTEGER NOT NULL,          -- 1: this user sent it
    edited_at TEXT,
    deleted INTEGER NOT NULL DEFAULT 0,
    attachments TEXT NOT NULL DEFAULT '[]' -- JSON: [{attachment_id, content_type, size, file_name}]
);
CREATE INDEX IF NOT EXISTS ix_messages_conversation ON messages (conversation, sent_at);
CREATE TABLE IF NOT EXISTS conversations (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    target TEXT NOT NULL,               -- the other user's id, or the group's
    read_seq INTEGER NOT NULL DEFAULT 0, -- messages from others up to this seq are read
    read_message_id TEXT,               -- the message read up to (the server's marker)
    their_read_seq INTEGER NOT NULL DEFAULT 0,  -- direct: the other person has read up to this seq (a receipt)
    their_read_message_id TEXT,
    name TEXT,                          -- a group's name, from `member` events
    member INTEGER                      -- a group: 1 the user is a member, 0 left, NULL unknown
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
CREATE TABLE IF NOT EXISTS outbox_files (
    client_message_id TEXT NOT NULL,    -- the send (outbox) that carries the file
    position INTEGER NOT NULL,          -- its place in the message
    path TEXT NOT NULL,                 -- absolute, as queued
    content_type TEXT NOT NULL,
    file_name TEXT NOT NULL,
    attachment_id TEXT,                 -- once uploaded: the send carries it (NULL: upload it)
    size INTEGER,                       -- once uploaded: the bytes declared and sent
    PRIMARY KEY (client_message_id, position)
);
CREATE TABLE IF NOT EXISTS users (
    user_id TEXT PRIMARY KEY,
    user_name TEXT,                     -- NULL: /users left the user out (a deleted account)
    handle TEXT,
    fetched_at REAL NOT NULL            -- time.time() of the answer
);
"""

NAMES_MAX_AGE_SECONDS = 24 * 3600  # a name older than this is asked again
STREAM_VERSION = 3  # PRAGMA user_version of a store built from /sync, with the messages' attachments

# Columns an older store lacks, added when it is opened.
_ADDED_COLUMNS = {
    "messages": (("edited_at", "TEXT"), ("deleted", "INTEGER NOT NULL DEFAULT 0"),
                 ("attachments", "TEXT NOT NULL DEFAULT '[]'")),
    "conversations": (("read_message_id", "TEXT"), ("their_read_seq", "INTEGER NOT NULL DEFAULT 0"),
                      ("their_read_message_id", "TEXT"), ("name", "TEXT"), ("member", "INTEGER")),
}
_MESSAGE_KEYS = ("message_id", "seq", "kind", "sender_id", "group_id", "text", "sent_at", "outgoing", "edited_at",
                 "deleted", "attachments")


class StoreOfAnotherUser(Exception):
    """The store file holds another user's messages."""


def conversation_of(item: Dict[str, Any], me: str) -> str:
    """A message's (or an edit's, a deletion's) conversation: its group's, else
    the other person's: the recipient of one `me` sent (`me` for a note to
    self), the sender of one received. An item without recipient_id (a
    /read_messages item) was received."""
    if item.get("group_id"):
        return f"group:{item['group_id']}"
    if item["sender_id"] == me and item.get("recipient_id"):
        return f"direct:{item['recipient_id']}"
    return f"direct:{item['sender_id']}"


def marker_conversation(event: Dict[str, Any]) -> str:
    """A `read` or `receipt` event's conversation."""
    if event.get("group_id"):
        return f"group:{event['group_id']}"
    return f"direct:{event['with_user_id']}"


@dataclass(frozen=True)
class Conversation:
    id: str
    kind: str
    target: str
    unread: int
    last_text: Optional[str]  # None: no message yet, or the last one was deleted (last_deleted)
    last_at: Optional[str]
    last_edited: bool = False
    last_deleted: bool = False
    read_up_to: Optional[str] = None  # the message this user has read up to (on any device)
    their_read_up_to: Optional[str] = None  # direct: the message the other person has read up to (a receipt)
    name: Optional[str] = None  # a group's name, when a `member` event told it
    last_files: int = 0  # how many files the last message carries


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
class OutboxFile:
    """A file a queued send carries: uploaded once attachment_id is set."""

    path: str
    content_type: str
    file_name: str
    attachment_id: Optional[str] = None
    size: Optional[int] = None


@dataclass(frozen=True)
class Pending:
    client_message_id: str
    kind: str
    target: str
    text: str
    attempts: int
    next_attempt_at: float
    files: Tuple[OutboxFile, ...] = ()


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
            if row is None or row[0] == user_id:
                self._upgrade(db)
        if row is not None and row[0] != user_id:
            self._db.close()
            raise StoreOfAnotherUser(f"{path} is the store of user {row[0]}, not of {user_id}")

    def close(self) -> None:
        self._db.close()

    @staticmethod
    def _upgrade(db: sqlite3.Connection) -> None:
        """A store of an older client: the columns it lacks, and its cursor
        (/read_messages', past events it never applied; or one from before
        messages kept their attachments) back to the start, so the stream is
        read again from 0 (what it holds is kept: events update it)."""
        if db.execute("PRAGMA user_version").fetchone()[0] >= STREAM_VERSION:
            return
        for table, columns in _ADDED_COLUMNS.items():
            have = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
            for name, declaration in columns:
                if name not in have:
                    db.execute(f"ALTER TABLE {table} ADD COLUMN {name} {declaration}")
        db.execute("DELETE FROM meta WHERE key = 'cursor'")
        db.execute(f"PRAGMA user_version = {STREAM_VERSION}")

    def _tx(self):
        return _Transaction(self._db, self._lock)

    # ------------------------------------------------------------------ the cursor

    @property
    def cursor(self) -> int:
        row = self._db.execute("SELECT value FROM meta WHERE key = 'cursor'").fetchone()
        return int(row[0]) if row else 0

    def apply(self, events: Iterable[Dict[str, Any]]) -> List[Dict[str, Any]]:
        """Apply stream events that continue the cursor, in one transaction;
        the news, in seq order: a message not seen before (not this device's
        own send coming back), an edit, a deletion of a message not deleted
        yet, a read, a receipt or a membership. Events at or below the cursor
        are ones we have; an event past a gap is left for the cursor read that fills it."""
        news: List[Dict[str, Any]] = []
        with self._tx() as db:
            cursor = self.cursor  # read inside the transaction: the same connection
            for event in sorted(events, key=lambda e: e["seq"]):
                if event["seq"] <= cursor:
                    continue
                if event["seq"] != cursor + 1:
                    break
                if self._apply(db, event):
                    news.append(event)
                cursor = event["seq"]
            self._set_cursor(db, cursor)
        return news

    def _apply(self, db: sqlite3.Connection, event: Dict[str, Any]) -> bool:
        """One event; whether it is news."""
        kind = event.get("type", "message")
        if kind == "message":
            return self._message(db, event)
        if kind == "edit":
            gone = event.get("text") is None  # edited after its deletion: no text, no files
            found = db.execute("UPDATE messages SET text = ?, edited_at = ?, deleted = ?,"
                               " attachments = CASE WHEN ? THEN '[]' ELSE attachments END WHERE message_id = ?",
                               (event.get("text") or "", event.get("edited_at"), int(gone), int(gone),
                                event["message_id"])).rowcount
            return True if found else self._touch_of(db, event)
        if kind == "delete":
            found = db.execute("UPDATE messages SET text = '', deleted = 1, attachments = '[]'"
                               " WHERE message_id = ? AND deleted = 0", (event["message_id"],)).rowcount
            return bool(found)
        if kind in ("read", "receipt"):
            conversation = marker_conversation(event)
            self._touch(db, conversation)
            row = db.execute("SELECT seq FROM messages WHERE message_id = ?", (event["message_id"],)).fetchone()
            seq = row[0] if row and row[0] is not None else 0
            column = "read" if kind == "read" else "their_read"
            db.execute(f"UPDATE conversations SET {column}_seq = MAX({column}_seq, ?), {column}_message_id = ?"
                       f" WHERE id = ? AND {column}_seq <= ?", (seq, event["message_id"], conversation, seq))
            return True
        if kind == "member":
            conversation = f"group:{event['group_id']}"
            mine = event["user_id"] == self.me
            if mine:
                self._touch(db, conversation)
            db.execute("UPDATE conversations SET name = COALESCE(?, name), member = CASE WHEN ? THEN ? ELSE member END"
                       " WHERE id = ?", (event.get("group_name"), mine, int(bool(event["member"])), conversation))
            return True
        return False  # a type this client does not know: skipped, the cursor moves on

    def _message(self, db: sqlite3.Connection, event: Dict[str, Any]) -> bool:
        conversation = conversation_of(event, self.me)
        outgoing = event["sender_id"] == self.me
        text, deleted = event.get("text"), bool(event.get("deleted")) or event.get("text") is None
        known = db.execute("SELECT 1 FROM messages WHERE message_id = ?", (event["message_id"],)).fetchone()
        attachments = [] if deleted else [_attachment(a) for a in event.get("attachments") or []]
        db.execute(
            "INSERT INTO messages (message_id, seq, conversation, kind, sender_id, group_id, text, sent_at,"
            " outgoing, edited_at, deleted, attachments) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (message_id) DO UPDATE SET seq = excluded.seq, outgoing = excluded.outgoing,"
            " text = excluded.text, edited_at = excluded.edited_at, deleted = excluded.deleted,"
            " attachments = excluded.attachments",
            (event["message_id"], event["seq"], conversation, event["kind"], event["sender_id"],
             event.get("group_id"), "" if deleted else text, event["sent_at"], int(outgoing), event.get("edited_at"),
             int(deleted), json.dumps(attachments)))
        self._touch(db, conversation)
        if known:
            return False  # this device sent it (store.sent) or had it before: shown already
        if outgoing and not deleted:
            kind, _, target = conversation.partition(":")
            echo = db.execute("SELECT client_message_id FROM outbox WHERE state = 'pending' AND kind = ?"
                              " AND target = ? AND text = ? LIMIT 1", (kind, target, text)).fetchone()
            if echo is not None:  # this device's send, back before its answer: it is shown as sent
                return False
        return True

    def _touch_of(self, db: sqlite3.Connection, event: Dict[str, Any]) -> bool:
        """An edit of a message this store does not hold (it came before the stream): news all the same."""
        self._touch(db, conversation_of(event, self.me))
        return True

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
            " (SELECT COUNT(*) FROM messages m WHERE m.conversation = c.id AND m.outgoing = 0 AND m.deleted = 0"
            "  AND m.seq > c.read_seq),"
            " l.text, l.sent_at, l.edited_at IS NOT NULL, COALESCE(l.deleted, 0), c.read_message_id,"
            " c.their_read_message_id, c.name, COALESCE(json_array_length(l.attachments), 0)"
            " FROM conversations c LEFT JOIN messages l ON l.message_id = (SELECT message_id FROM messages m"
            "  WHERE m.conversation = c.id ORDER BY sent_at DESC, seq DESC LIMIT 1)"
            " ORDER BY l.sent_at DESC").fetchall()
        return [Conversation(id, kind, target, unread, None if deleted else text, at, bool(edited), bool(deleted),
                             read, theirs, name, files)
                for id, kind, target, unread, text, at, edited, deleted, read, theirs, name, files in rows]

    def conversation(self, conversation: str) -> Optional[Conversation]:
        return next((c for c in self.conversations() if c.id == conversation), None)

    def history(self, conversation: str, limit: int = 100) -> List[Dict[str, Any]]:
        """The conversation's last `limit` messages, oldest first: each with
        `text` (None once deleted), `edited_at` (or None), `deleted`, `outgoing`
        and `attachments` ([{attachment_id, content_type, size, file_name}])."""
        rows = self._db.execute(
            f"SELECT {', '.join(_MESSAGE_KEYS)} FROM messages"
            " WHERE conversation = ? ORDER BY sent_at DESC, seq DESC LIMIT ?", (conversation, limit)).fetchall()
        return [_message_dict(row) for row in reversed(rows)]

    def message(self, message_id: str) -> Optional[Dict[str, Any]]:
        """A stored message (as history() gives it), with its `conversation`."""
        row = self._db.execute(f"SELECT {', '.join(_MESSAGE_KEYS)}, conversation FROM messages"
                               " WHERE message_id = ?", (message_id,)).fetchone()
        if row is None:
            return None
        return {**_message_dict(row[:-1]), "conversation": row[-1]}

    def attachments_starting(self, prefix: str) -> List[Dict[str, Any]]:
        """The files of the stored messages (not deleted) whose attachment id
        starts with `prefix` (a short id, or the whole): each once, with its
        `message_id`."""
        rows = self._db.execute(
            "SELECT m.message_id, a.value FROM messages m, json_each(m.attachments) a WHERE m.deleted = 0"
            " AND substr(json_extract(a.value, '$.attachment_id'), 1, ?) = ?", (len(prefix), prefix.lower()))
        found: Dict[str, Dict[str, Any]] = {}
        for message_id, value in rows:
            attachment = json.loads(value)
            found.setdefault(attachment["attachment_id"], {**attachment, "message_id": message_id})
        return list(found.values())

    def own_messages_starting(self, prefix: str) -> List[str]:
        """The ids of the messages this user sent that start with `prefix` (a short id)."""
        rows = self._db.execute("SELECT message_id FROM messages WHERE outgoing = 1 AND substr(message_id, 1, ?) = ?",
                                (len(prefix), prefix.lower()))
        return [row[0] for row in rows]

    def edited(self, message_id: str, text: str, edited_at: str) -> None:
        """This device's edit, acknowledged: shown at once (its `edit` event says the same)."""
        with self._tx() as db:
            db.execute("UPDATE messages SET text = ?, edited_at = ? WHERE message_id = ? AND deleted = 0",
                       (text, edited_at, message_id))

    def deleted(self, message_id: str) -> None:
        """This device's deletion, acknowledged."""
        with self._tx() as db:
            db.execute("UPDATE messages SET text = '', deleted = 1, attachments = '[]' WHERE message_id = ?",
                       (message_id,))

    def unread_up_to(self, conversation: str) -> Optional[Dict[str, Any]]:
        """What marks the conversation read: its newest message from others
        (any, in notes to self) in the stream, when past the read marker; else None."""
        mine = conversation == f"direct:{self.me}"
        row = self._db.execute(
            "SELECT m.message_id, m.seq FROM messages m JOIN conversations c ON c.id = m.conversation"
            " WHERE m.conversation = ? AND m.seq IS NOT NULL AND (m.outgoing = 0 OR ?) AND m.seq > c.read_seq"
            " ORDER BY m.seq DESC LIMIT 1", (conversation, int(mine))).fetchone()
        return {"message_id": row[0], "seq": row[1]} if row else None

    def mark_read(self, conversation: str, up_to_seq: Optional[int] = None, message_id: Optional[str] = None) -> None:
        """Mark the conversation read here: up to `up_to_seq` (the server
        acknowledged it), else up to its newest message. Never moves back."""
        with self._tx() as db:
            if up_to_seq is None:
                db.execute("UPDATE conversations SET read_seq = MAX(read_seq, COALESCE((SELECT MAX(seq) FROM messages"
                           " WHERE conversation = ?), 0)) WHERE id = ?", (conversation, conversation))
            else:
                db.execute("UPDATE conversations SET read_seq = ?, read_message_id = COALESCE(?, read_message_id)"
                           " WHERE id = ? AND read_seq < ?", (up_to_seq, message_id, conversation, up_to_seq))

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

    def queue(self, kind: str, target: str, text: str, files: Sequence[OutboxFile] = ()) -> str:
        """Store a send before it goes out (with the files it carries, by
        path: made absolute, so a later process in another folder finds
        them); its idempotency key."""
        key = f"c-{uuid.uuid4()}"
        with self._tx() as db:
            db.execute("INSERT INTO outbox (client_message_id, kind, target, text, queued_at, state,"
                       " next_attempt_at) VALUES (?, ?, ?, ?, ?, 'pending', 0)", (key, kind, target, text, time.time()))
            db.executemany("INSERT INTO outbox_files (client_message_id, position, path, content_type, file_name)"
                           " VALUES (?, ?, ?, ?, ?)",
                           [(key, i, str(Path(f.path).absolute()), f.content_type, f.file_name)
                            for i, f in enumerate(files)])
            self._touch(db, f"{kind}:{target}")
        return key

    def pending(self, now: Optional[float] = None) -> List[Pending]:
        rows = self._db.execute(
            "SELECT client_message_id, kind, target, text, attempts, next_attempt_at FROM outbox"
            " WHERE state = 'pending' AND next_attempt_at <= ? ORDER BY queued_at",
            (time.time() if now is None else now,)).fetchall()
        return [Pending(key, kind, target, text, attempts, at, self.outbox_files(key))
                for key, kind, target, text, attempts, at in rows]

    def outbox_files(self, key: str) -> Tuple[OutboxFile, ...]:
        """The files a queued send carries, in order."""
        rows = self._db.execute("SELECT path, content_type, file_name, attachment_id, size FROM outbox_files"
                                " WHERE client_message_id = ? ORDER BY position", (key,)).fetchall()
        return tuple(OutboxFile(*row) for row in rows)

    def uploaded(self, key: str, position: int, attachment_id: str, size: int) -> None:
        """A queued send's file is uploaded: it goes as this attachment from
        now on. The first upload recorded stays (another process flushing the
        same outbox may have uploaded it too): outbox_files() says which."""
        with self._tx() as db:
            db.execute("UPDATE outbox_files SET attachment_id = ?, size = ? WHERE client_message_id = ?"
                       " AND position = ? AND attachment_id IS NULL", (attachment_id, size, key, position))

    def forget_uploads(self, key: str) -> None:
        """The server no longer holds a queued send's uploads (never attached,
        deleted after a day): they are uploaded again from their paths."""
        with self._tx() as db:
            db.execute("UPDATE outbox_files SET attachment_id = NULL, size = NULL WHERE client_message_id = ?",
                       (key,))

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
            attachments = [{"attachment_id": a, "content_type": t, "size": n, "file_name": f} for a, t, n, f in
                           db.execute("SELECT attachment_id, content_type, size, file_name FROM outbox_files"
                                      " WHERE client_message_id = ? ORDER BY position", (key,))]
            db.execute("UPDATE outbox SET state = 'sent', message_id = ?, error = NULL WHERE client_message_id = ?",
                       (message_id, key))
            db.execute("INSERT INTO messages (message_id, seq, conversation, kind, sender_id, group_id, text,"
                       " sent_at, outgoing, attachments) VALUES (?, NULL, ?, ?, ?, ?, ?, ?, 1, ?)"
                       " ON CONFLICT (message_id) DO UPDATE SET outgoing = 1",  # a note to self, received first
                       (message_id, f"{kind}:{target}", kind, self.me, target if kind == "group" else None, text,
                        sent_at, json.dumps(attachments)))

    def retry_later(self, key: str, seconds: float, error: str) -> None:
        with self._tx() as db:
            db.execute("UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?, error = ?"
                       " WHERE client_message_id = ?", (time.time() + seconds, error, key))

    def failed(self, key: str, error: str) -> None:
        with self._tx() as db:
            db.execute("UPDATE outbox SET state = 'failed', error = ? WHERE client_message_id = ?", (error, key))


def _attachment(item: Dict[str, Any]) -> Dict[str, Any]:
    """What a message keeps of a file it carries."""
    return {"attachment_id": str(item["attachment_id"]), "content_type": str(item.get("content_type") or ""),
            "size": int(item.get("size") or 0), "file_name": item.get("file_name")}


def _message_dict(row: Iterable[Any]) -> Dict[str, Any]:
    message = dict(zip(_MESSAGE_KEYS, row, strict=True))
    message["deleted"] = bool(message["deleted"])
    message["attachments"] = [] if message["deleted"] else json.loads(message["attachments"] or "[]")
    if message["deleted"]:
        message["text"] = None
    return message


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
