"""One repository per table. Each method is one visible, parameterized
statement (placeholders are %s for both databases; see db.Tx)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Dict, List, Optional, Sequence

from .db import Statement, Tx
from .dialects import Result, from_db_time, to_db_time


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


class Users(Repository):
    def add(self, *, user_id: str, name: str, created_at: datetime) -> None:
        self._tx.execute(
            "INSERT INTO users (id, name, created_at) VALUES (%s, %s, %s)",
            (user_id, name, to_db_time(created_at)),
        )

    def exists(self, *, user_id: str) -> bool:
        return self._tx.one("SELECT 1 FROM users WHERE id = %s", (user_id,)) is not None


class InboxCounters(Repository):
    def add(self, *, user_id: str) -> None:
        self._tx.execute("INSERT INTO inbox_counters (user_id, last_seq) VALUES (%s, 0)", (user_id,))

    def last_seq(self, *, user_id: str) -> Optional[int]:
        row = self._tx.one("SELECT last_seq FROM inbox_counters WHERE user_id = %s", (user_id,))
        return None if row is None else int(row[0])

    # A send's statements travel in one batch (Tx.batch): these build them.

    def advance_unless_blocked(self, *, user_id: str, sender_id: str, message_id: str) -> Statement:
        """Take the user's next seq for `message_id` (row-locking the counter
        until commit), unless the user blocks the sender: 0 rows then. On
        MySQL the new seq comes back in the OK packet (LAST_INSERT_ID(expr)),
        on SQLite as a returned row."""
        if self._tx.dialect == "mysql":
            return ("UPDATE inbox_counters SET last_seq = LAST_INSERT_ID(last_seq + 1), last_message_id = %s"
                    " WHERE user_id = %s AND NOT EXISTS"
                    " (SELECT 1 FROM blocks WHERE blocker_id = %s AND blocked_id = %s)",
                    (message_id, user_id, user_id, sender_id))
        return ("UPDATE inbox_counters SET last_seq = last_seq + 1, last_message_id = %s"
                " WHERE user_id = %s AND NOT EXISTS"
                " (SELECT 1 FROM blocks WHERE blocker_id = %s AND blocked_id = %s) RETURNING last_seq",
                (message_id, user_id, user_id, sender_id))

    def seq_taken(self, result: Result) -> Optional[int]:
        """The seq advance_unless_blocked took, or None when it took none (blocked)."""
        if self._tx.dialect == "mysql":
            return result.lastrowid if result.rowcount == 1 else None
        return result.rows[0][0] if result.rows else None

    def advance_members(self, *, group_id: str, sender_id: str, message_id: str) -> Statement:
        """Take the next seq for `message_id` of every member but the sender
        and those who block the sender, in one statement whatever the group's
        size, and only if the message row exists (the sender is a member).
        Counters lock in user_id order (the group_members key), so fan-outs
        never deadlock with each other."""
        if self._tx.dialect == "mysql":
            return ("UPDATE group_members m STRAIGHT_JOIN inbox_counters c ON c.user_id = m.user_id"
                    " LEFT JOIN blocks b ON b.blocker_id = m.user_id AND b.blocked_id = %s"
                    " SET c.last_seq = c.last_seq + 1, c.last_message_id = %s"
                    " WHERE m.group_id = %s AND m.user_id <> %s AND b.blocker_id IS NULL"
                    " AND EXISTS (SELECT 1 FROM messages x WHERE x.id = %s)",
                    (sender_id, message_id, group_id, sender_id, message_id))
        return ("UPDATE inbox_counters SET last_seq = last_seq + 1, last_message_id = %s"
                " WHERE user_id IN (SELECT m.user_id FROM group_members m"
                " LEFT JOIN blocks b ON b.blocker_id = m.user_id AND b.blocked_id = %s"
                " WHERE m.group_id = %s AND m.user_id <> %s AND b.blocker_id IS NULL)"
                " AND EXISTS (SELECT 1 FROM messages x WHERE x.id = %s)",
                (message_id, sender_id, group_id, sender_id, message_id))

    def advanced_by(self, *, group_id: str, message_id: str) -> Statement:
        """Every counter of the group's members that `message_id` advanced, as
        one row of one text, 'user_id:seq,user_id:seq,...' (reading 10,000
        rows one by one would cost the driver more than the database), or
        NULL for none. In READ COMMITTED a read of our own updates, no locks."""
        if self._tx.dialect == "mysql":
            aggregate = "GROUP_CONCAT(c.user_id, ':', c.last_seq SEPARATOR ',')"
        else:
            aggregate = "group_concat(c.user_id || ':' || c.last_seq, ',')"
        return (f"SELECT {aggregate} FROM group_members m JOIN inbox_counters c ON c.user_id = m.user_id"
                " WHERE m.group_id = %s AND c.last_message_id = %s", (group_id, message_id))

    @staticmethod
    def seqs_of(result: Result) -> dict:
        """advanced_by's one row as {user_id: seq}."""
        text = result.rows[0][0] if result.rows else None
        if not text:
            return {}
        pairs = (pair.split(":") for pair in (text.decode() if isinstance(text, bytes) else text).split(","))
        return {user_id: int(seq) for user_id, seq in pairs}


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

    def is_member(self, *, group_id: str, user_id: str) -> bool:
        return (
            self._tx.one("SELECT 1 FROM group_members WHERE group_id = %s AND user_id = %s", (group_id, user_id))
            is not None
        )


class Messages(Repository):
    def add(self, *, message: StoredMessage, client_message_id: Optional[str]) -> Statement:
        """A direct message's row."""
        return ("INSERT INTO messages (id, sender_id, recipient_id, group_id, body, sent_at, client_message_id)"
                " VALUES (%s, %s, %s, NULL, %s, %s, %s)",
                (message.id, message.sender_id, message.recipient_id, message.body, to_db_time(message.sent_at),
                 client_message_id))

    def add_if_member(self, *, message: StoredMessage, client_message_id: Optional[str]) -> Statement:
        """A group message's row, only if its sender is a member (0 rows else).
        Its foreign key share-locks the group's row until commit, so no one
        joins or leaves while the message is delivered."""
        return ("INSERT INTO messages (id, sender_id, recipient_id, group_id, body, sent_at, client_message_id)"
                " SELECT %s, %s, NULL, %s, %s, %s, %s FROM group_members WHERE group_id = %s AND user_id = %s",
                (message.id, message.sender_id, message.group_id, message.body, to_db_time(message.sent_at),
                 client_message_id, message.group_id, message.sender_id))

    def oldest_deliveries(self, *, before: datetime, limit: int) -> List[tuple]:
        """(user_id, seq, message_id) of up to `limit` inbox rows of the
        oldest messages sent before `before`, oldest first."""
        return self._tx.all(
            "SELECT i.user_id, i.seq, i.message_id FROM messages m JOIN inbox i ON i.message_id = m.id"
            " WHERE m.sent_at < %s ORDER BY m.sent_at, m.id LIMIT %s", (to_db_time(before), limit))

    def undelivered_before(self, *, before: datetime, limit: int) -> List[str]:
        """Ids of up to `limit` messages sent before `before` that no inbox row references."""
        # An anti-join, so each message is one lookup in ix_inbox_message
        # (NOT EXISTS may be planned as a scan of the whole index).
        return [row[0] for row in self._tx.all(
            "SELECT m.id FROM messages m LEFT JOIN inbox i ON i.message_id = m.id"
            " WHERE m.sent_at < %s AND i.message_id IS NULL ORDER BY m.sent_at LIMIT %s",
            (to_db_time(before), limit))]

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

    def deliver(self, *, message_id: str, sent_at: datetime, user_id: Optional[str] = None,
                group_id: Optional[str] = None) -> Statement:
        """An inbox row, with the seq it took, for every counter `message_id`
        advanced: the recipient's (`user_id`) or the group's members'
        (`group_id`). The recipients are exactly the counters the message
        advanced. In READ COMMITTED, INSERT ... SELECT reads its source as a
        consistent read: it locks no row of the counters it reads."""
        when = to_db_time(sent_at)
        if user_id is not None:
            return ("INSERT INTO inbox (user_id, seq, message_id, sent_at) SELECT user_id, last_seq, %s, %s"
                    " FROM inbox_counters WHERE user_id = %s AND last_message_id = %s",
                    (message_id, when, user_id, message_id))
        return ("INSERT INTO inbox (user_id, seq, message_id, sent_at) SELECT c.user_id, c.last_seq, %s, %s"
                " FROM group_members m JOIN inbox_counters c ON c.user_id = m.user_id"
                " WHERE m.group_id = %s AND c.last_message_id = %s", (message_id, when, group_id, message_id))

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
