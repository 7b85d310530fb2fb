"""One repository per table, and Deliveries for the writes of a send, which
span three tables in one round trip. Each method runs its visible,
parameterized statements (placeholders are %s for both databases; see db.Tx)
and returns decoded values. The few statements whose SQL differs by
database come from the dialect (dialects.py)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Dict, List, Optional, Sequence, Tuple

from .db import Tx
from .dialects import Result, Statement, from_db_time, to_db_time


@dataclass(frozen=True)
class StoredMessage:
    id: str
    sender_id: str
    recipient_id: Optional[str]
    group_id: Optional[str]
    body: str
    sent_at: datetime


@dataclass(frozen=True)
class InboxEntry:
    seq: int
    message: StoredMessage


class Repository:
    """One table's statements, run in the caller's unit of work."""

    def __init__(self, tx: Tx) -> None:
        self._tx = tx


@dataclass(frozen=True)
class Account:
    user_id: str
    name: str
    handle: Optional[str]
    password_hash: Optional[str]


@dataclass(frozen=True)
class SessionRow:
    session_id: str
    device_name: str
    created_at: datetime


class Users(Repository):
    """Accounts. A deleted one keeps its row (messages it sent still name
    it), with nothing left of it but the id and deleted_at."""

    _ACCOUNT = "SELECT id, name, handle, password_hash FROM users"

    def add(self, *, user_id: str, name: str, created_at: datetime, handle: Optional[str] = None,
            password_hash: Optional[str] = None) -> None:
        """db.DuplicateKey when the handle is taken."""
        self._tx.execute(
            "INSERT INTO users (id, name, handle, password_hash, created_at) VALUES (%s, %s, %s, %s, %s)",
            (user_id, name, handle, password_hash, to_db_time(created_at)),
        )

    def exists(self, *, user_id: str) -> bool:
        return self._tx.one("SELECT 1 FROM users WHERE id = %s AND deleted_at IS NULL", (user_id,)) is not None

    def account(self, *, user_id: str) -> Optional[Account]:
        return self._account(self._tx.one(self._ACCOUNT + " WHERE id = %s AND deleted_at IS NULL", (user_id,)))

    def by_handle(self, *, handle: str) -> Optional[Account]:
        return self._account(self._tx.one(self._ACCOUNT + " WHERE handle = %s", (handle,)))

    def accounts(self, *, user_ids: Sequence[str]) -> List[Account]:
        """The accounts among these ids that exist and are not deleted (one primary-key lookup each)."""
        if not user_ids:
            return []
        marks = ", ".join(["%s"] * len(user_ids))
        rows = self._tx.all(self._ACCOUNT + f" WHERE id IN ({marks}) AND deleted_at IS NULL", tuple(user_ids))
        return [Account(*row) for row in rows]

    def update(self, *, user_id: str, name: Optional[str] = None, handle: Optional[str] = None,
               password_hash: Optional[str] = None) -> None:
        """Change what is given (None: keep it). db.DuplicateKey when the handle is taken."""
        self._tx.execute(
            "UPDATE users SET name = COALESCE(%s, name), handle = COALESCE(%s, handle),"
            " password_hash = COALESCE(%s, password_hash) WHERE id = %s AND deleted_at IS NULL",
            (name, handle, password_hash, user_id),
        )

    def erase(self, *, user_id: str, deleted_at: datetime) -> None:
        """Delete the account: its name, handle (freed for others) and password go."""
        self._tx.execute(
            "UPDATE users SET name = '', handle = NULL, password_hash = NULL, deleted_at = %s WHERE id = %s",
            (to_db_time(deleted_at), user_id),
        )

    @staticmethod
    def _account(row: Optional[Tuple[Any, ...]]) -> Optional[Account]:
        return None if row is None else Account(*row)


class Sessions(Repository):
    """A user's devices: each token names one; a revoked one is kept (with
    revoked_at), so its tokens stay refused."""

    def add(self, *, session_id: str, user_id: str, device_name: str, created_at: datetime) -> None:
        self._tx.execute(
            "INSERT INTO sessions (id, user_id, device_name, created_at) VALUES (%s, %s, %s, %s)",
            (session_id, user_id, device_name, to_db_time(created_at)),
        )

    def live(self, *, session_id: str) -> Optional[bool]:
        """True when live, False when revoked, None when there is no such session."""
        row = self._tx.one("SELECT revoked_at FROM sessions WHERE id = %s", (session_id,))
        return None if row is None else row[0] is None

    def of_user(self, *, user_id: str) -> List[SessionRow]:
        """The user's live sessions, oldest first."""
        rows = self._tx.all("SELECT id, device_name, created_at FROM sessions"
                            " WHERE user_id = %s AND revoked_at IS NULL ORDER BY created_at, id", (user_id,))
        return [SessionRow(sid, device, from_db_time(created)) for sid, device, created in rows]

    def revoke(self, *, session_ids: Sequence[str], at: datetime) -> None:
        if not session_ids:
            return
        marks = ", ".join(["%s"] * len(session_ids))
        self._tx.execute(f"UPDATE sessions SET revoked_at = %s WHERE id IN ({marks}) AND revoked_at IS NULL",
                         (to_db_time(at), *session_ids))


class LinkCodes(Repository):
    """One-time codes that sign a new device in as the user who made them,
    kept only as their SHA-256."""

    def replace(self, *, user_id: str, code_hash: str, expires_at: datetime) -> None:
        """The user's one live code (an earlier one stops working)."""
        self._tx.execute("DELETE FROM link_codes WHERE user_id = %s", (user_id,))
        self._tx.execute("INSERT INTO link_codes (code_hash, user_id, expires_at) VALUES (%s, %s, %s)",
                         (code_hash, user_id, to_db_time(expires_at)))

    def redeem(self, *, code_hash: str, now: datetime) -> Optional[str]:
        """The code's user, once: the code is deleted, so of two redeeming at
        once only one deletes it. None for an unknown, used or expired code."""
        row = self._tx.one("SELECT user_id, expires_at FROM link_codes WHERE code_hash = %s", (code_hash,))
        if row is None or self._tx.execute("DELETE FROM link_codes WHERE code_hash = %s", (code_hash,)) != 1:
            return None
        return row[0] if from_db_time(row[1]) > now else None

    def remove_of(self, *, user_id: str) -> None:
        self._tx.execute("DELETE FROM link_codes WHERE user_id = %s", (user_id,))


class InboxCounters(Repository):
    def add(self, *, user_id: str) -> None:
        self._tx.execute("INSERT INTO inbox_counters (user_id, last_seq) VALUES (%s, 0)", (user_id,))

    def remove(self, *, user_id: str) -> None:
        """A deleted account's counter: nothing is delivered to it any more."""
        self._tx.execute("DELETE FROM inbox_counters WHERE user_id = %s", (user_id,))

    def last_seq(self, *, user_id: str) -> Optional[int]:
        row = self._tx.one("SELECT last_seq FROM inbox_counters WHERE user_id = %s", (user_id,))
        return None if row is None else int(row[0])


class Blocks(Repository):
    def add(self, *, blocker_id: str, blocked_id: str, created_at: datetime) -> None:
        self._tx.execute(
            "INSERT INTO blocks (blocker_id, blocked_id, created_at) VALUES (%s, %s, %s)",
            (blocker_id, blocked_id, to_db_time(created_at)),
        )

    def remove(self, *, blocker_id: str, blocked_id: str) -> int:
        return self._tx.execute(
            "DELETE FROM blocks WHERE blocker_id = %s AND blocked_id = %s", (blocker_id, blocked_id)
        )

    def remove_all_of(self, *, user_id: str) -> None:
        """Every block by or of the user (two statements: each has its index)."""
        self._tx.execute("DELETE FROM blocks WHERE blocker_id = %s", (user_id,))
        self._tx.execute("DELETE FROM blocks WHERE blocked_id = %s", (user_id,))


class Groups(Repository):
    def add(self, *, group_id: str, name: str, created_at: datetime) -> None:
        self._tx.execute(
            "INSERT INTO chat_groups (id, name, member_count, created_at) VALUES (%s, %s, 0, %s)",
            (group_id, name, to_db_time(created_at)),
        )

    def exists(self, *, group_id: str) -> bool:
        return self._tx.one("SELECT 1 FROM chat_groups WHERE id = %s", (group_id,)) is not None

    def take_seat(self, *, group_id: str, capacity: int) -> bool:
        """Count one more member if there is room; locks the group row."""
        return (
            self._tx.execute(
                "UPDATE chat_groups SET member_count = member_count + 1 WHERE id = %s AND member_count < %s",
                (group_id, capacity),
            )
            == 1
        )

    def free_seat(self, *, group_id: str) -> None:
        self._tx.execute("UPDATE chat_groups SET member_count = member_count - 1 WHERE id = %s", (group_id,))

    def free_seat_of(self, *, group_id: str, user_id: str) -> bool:
        """Count one member less if `user_id` is one; locks the group row
        first, as a join and a group send do, so the three never deadlock."""
        return (
            self._tx.execute(
                "UPDATE chat_groups SET member_count = member_count - 1 WHERE id = %s"
                " AND EXISTS (SELECT 1 FROM group_members WHERE group_id = %s AND user_id = %s)",
                (group_id, group_id, user_id),
            )
            == 1
        )


class Members(Repository):
    def add(self, *, group_id: str, user_id: str, joined_at: datetime) -> None:
        self._tx.execute(
            "INSERT INTO group_members (group_id, user_id, joined_at) VALUES (%s, %s, %s)",
            (group_id, user_id, to_db_time(joined_at)),
        )

    def remove(self, *, group_id: str, user_id: str) -> int:
        return self._tx.execute(
            "DELETE FROM group_members WHERE group_id = %s AND user_id = %s", (group_id, user_id)
        )

    def leave_all(self, *, user_id: str) -> None:
        """The user leaves every group, each one's seat freed."""
        groups = [row[0] for row in self._tx.all("SELECT group_id FROM group_members WHERE user_id = %s",
                                                  (user_id,))]
        if groups:  # by their keys: an IN (subquery) would be planned as a scan of chat_groups
            marks = ", ".join(["%s"] * len(groups))
            self._tx.execute(f"UPDATE chat_groups SET member_count = member_count - 1 WHERE id IN ({marks})",
                             tuple(groups))
        self._tx.execute("DELETE FROM group_members WHERE user_id = %s", (user_id,))

    def is_member(self, *, group_id: str, user_id: str) -> bool:
        return (
            self._tx.one("SELECT 1 FROM group_members WHERE group_id = %s AND user_id = %s", (group_id, user_id))
            is not None
        )


class Messages(Repository):
    def oldest_deliveries(self, *, before: datetime, limit: int) -> List[Tuple[str, int, str]]:
        """(user_id, seq, message_id) of up to `limit` inbox rows of the
        oldest messages sent before `before`, oldest first."""
        rows = self._tx.all(
            "SELECT i.user_id, i.seq, i.message_id FROM messages m JOIN inbox i ON i.message_id = m.id"
            " WHERE m.sent_at < %s ORDER BY m.sent_at, m.id LIMIT %s", (to_db_time(before), limit))
        return [(user_id, int(seq), message_id) for user_id, seq, message_id in rows]

    def undelivered_before(self, *, before: datetime, limit: int) -> List[str]:
        """Ids of up to `limit` messages sent before `before` that no inbox row references."""
        # An anti-join, so each message is one lookup in ix_inbox_message
        # (NOT EXISTS may be planned as a scan of the whole index).
        return [row[0] for row in self._tx.all(
            "SELECT m.id FROM messages m LEFT JOIN inbox i ON i.message_id = m.id"
            " WHERE m.sent_at < %s AND i.message_id IS NULL ORDER BY m.sent_at LIMIT %s",
            (to_db_time(before), limit))]

    def remove_unheld_to(self, *, recipient_id: str) -> None:
        """Direct messages to the user that no inbox row holds any more (a
        deleted account's: nobody can read them)."""
        self._tx.execute("DELETE FROM messages WHERE recipient_id = %s"
                         " AND NOT EXISTS (SELECT 1 FROM inbox i WHERE i.message_id = messages.id)", (recipient_id,))

    def remove(self, *, message_ids: Sequence[str]) -> int:
        """Delete these messages if no inbox row references them any more."""
        if not message_ids:
            return 0
        marks = ", ".join(["%s"] * len(message_ids))
        return self._tx.execute(
            f"DELETE FROM messages WHERE id IN ({marks})"
            " AND NOT EXISTS (SELECT 1 FROM inbox i WHERE i.message_id = messages.id)", tuple(message_ids))

    def by_client_id(self, *, sender_id: str, client_message_id: str) -> Optional[StoredMessage]:
        row = self._tx.one(
            "SELECT id, sender_id, recipient_id, group_id, body, sent_at FROM messages"
            " WHERE sender_id = %s AND client_message_id = %s",
            (sender_id, client_message_id),
        )
        if row is None:
            return None
        return StoredMessage(row[0], row[1], row[2], row[3], row[4], from_db_time(row[5]))


class Inbox(Repository):
    _PAGE = (
        "SELECT i.seq, m.id, m.sender_id, m.recipient_id, m.group_id, m.body, m.sent_at"
        " FROM inbox i JOIN messages m ON m.id = i.message_id"
    )

    def remove_stream(self, *, user_id: str) -> None:
        """Every inbox row of the user (a deleted account's)."""
        self._tx.execute("DELETE FROM inbox WHERE user_id = %s", (user_id,))

    def remove_of(self, *, message_ids: Sequence[str]) -> int:
        """Delete every inbox row of these messages (through ix_inbox_message:
        a tenth of what deleting the same rows by their keys costs)."""
        if not message_ids:
            return 0
        marks = ", ".join(["%s"] * len(message_ids))
        return self._tx.execute(f"DELETE FROM inbox WHERE message_id IN ({marks})", tuple(message_ids))

    def remove_some_of(self, *, message_id: str, user_ids: Sequence[str]) -> int:
        """Delete the rows of one message to these users (a big group message, batch by batch)."""
        marks = ", ".join(["%s"] * len(user_ids))
        return self._tx.execute(f"DELETE FROM inbox WHERE message_id = %s AND user_id IN ({marks})",
                                (message_id, *user_ids))

    def seqs(self, *, message_id: str) -> Dict[str, int]:
        """{recipient: its seq} of one message's inbox rows."""
        return {user_id: int(seq) for user_id, seq in
                self._tx.all("SELECT user_id, seq FROM inbox WHERE message_id = %s", (message_id,))}

    def after(self, *, user_id: str, after: int, limit: int) -> List[InboxEntry]:
        return self._entries(
            self._PAGE + " WHERE i.user_id = %s AND i.seq > %s ORDER BY i.seq LIMIT %s",
            (user_id, after, limit),
        )

    def since(self, *, user_id: str, since: datetime, limit: int) -> List[InboxEntry]:
        return self._entries(
            self._PAGE + " WHERE i.user_id = %s AND i.sent_at >= %s ORDER BY i.seq LIMIT %s",
            (user_id, to_db_time(since), limit),
        )

    def _entries(self, sql: str, params: Sequence[object]) -> List[InboxEntry]:
        return [
            InboxEntry(int(seq), StoredMessage(mid, sender, recipient, group, body, from_db_time(sent)))
            for seq, mid, sender, recipient, group, body, sent in self._tx.all(sql, params)
        ]


_NEW_MESSAGE = "INSERT INTO messages (id, sender_id, recipient_id, group_id, body, sent_at, client_message_id)"


class Deliveries(Repository):
    """A message and its deliveries: the message row, each recipient's next
    seq (its counter row, locked until commit) and the inbox rows, as one
    batch (Tx.batch: one round trip on MySQL). A used idempotency key raises
    db.DuplicateKey, an unknown user db.MissingReference."""

    def direct(self, *, message: StoredMessage, client_message_id: Optional[str]) -> Optional[int]:
        """The recipient's seq; None when the recipient blocks the sender."""
        dialect, recipient = self._tx.dialect, message.recipient_id or ""
        _, taken, _ = self._tx.batch([
            (_NEW_MESSAGE + " VALUES (%s, %s, %s, NULL, %s, %s, %s)",
             (message.id, message.sender_id, recipient, message.body, to_db_time(message.sent_at),
              client_message_id)),
            dialect.take_seq_unless_blocked(user_id=recipient, sender_id=message.sender_id, message_id=message.id),
            self._inbox_rows(message, "FROM inbox_counters c WHERE c.user_id = %s", recipient),
        ])
        return dialect.seq_taken(taken)

    def group(self, *, message: StoredMessage, client_message_id: Optional[str]) -> Optional[Dict[str, int]]:
        """Each recipient's seq (every member but the sender and those who
        block the sender); None when no message row was stored because the
        sender is no member. The message row is inserted only for a member,
        and its foreign key share-locks the group's row until commit, so no
        one joins or leaves while the message is delivered."""
        dialect, group = self._tx.dialect, message.group_id or ""
        members = "FROM group_members m JOIN inbox_counters c ON c.user_id = m.user_id WHERE m.group_id = %s"
        stored, _, _, seqs = self._tx.batch([
            (_NEW_MESSAGE + " SELECT %s, %s, NULL, %s, %s, %s, %s FROM group_members"
                            " WHERE group_id = %s AND user_id = %s",
             (message.id, message.sender_id, group, message.body, to_db_time(message.sent_at), client_message_id,
              group, message.sender_id)),
            dialect.take_member_seqs(group_id=group, sender_id=message.sender_id, message_id=message.id),
            self._inbox_rows(message, members, group),
            # Every counter the message advanced, as one row of one text
            # (reading 10,000 rows one by one would cost the driver more than
            # the database). In READ COMMITTED a read of our own updates, no locks.
            (f"SELECT {dialect.seqs_as_text('c.user_id', 'c.last_seq')} {members} AND c.last_message_id = %s",
             (group, message.id)),
        ])
        return _seqs_of(seqs) if stored.rowcount == 1 else None

    @staticmethod
    def _inbox_rows(message: StoredMessage, source: str, target: str) -> Statement:
        """An inbox row, with the seq it took, for every counter of `source`
        the message advanced: the recipients are exactly those counters. In
        READ COMMITTED, INSERT ... SELECT reads its source as a consistent
        read: it locks no counter row."""
        return (f"INSERT INTO inbox (user_id, seq, message_id, sent_at) SELECT c.user_id, c.last_seq, %s, %s"
                f" {source} AND c.last_message_id = %s",
                (message.id, to_db_time(message.sent_at), target, message.id))


def _seqs_of(result: Result) -> Dict[str, int]:
    """'user_id:seq,user_id:seq,...' (or NULL for none) as {user_id: seq}."""
    text = result.rows[0][0] if result.rows else None
    if not text:
        return {}
    pairs = (pair.split(":") for pair in (text.decode() if isinstance(text, bytes) else text).split(","))
    return {user_id: int(seq) for user_id, seq in pairs}
