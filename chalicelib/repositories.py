"""One repository per table. Each method is one visible, parameterized
statement (placeholders are %s for both databases; see db.Tx)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Dict, List, Optional, Sequence, Tuple

from .db import Tx
from .dialects import from_db_time, to_db_time


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

    def advance_unless_blocked(self, *, user_id: str, sender_id: str) -> Optional[int]:
        """Take the user's next seq (row-locking it until commit), unless the
        user blocks `sender_id`; None when blocked."""
        return self._tx.advance_one(
            "UPDATE inbox_counters SET last_seq = {next_seq} WHERE user_id = %s"
            " AND NOT EXISTS (SELECT 1 FROM blocks WHERE blocker_id = %s AND blocked_id = %s)",
            (user_id, user_id, sender_id),
        )

    def advance(self, *, user_ids: Sequence[str]) -> Dict[str, int]:
        """Take the next seq of each user. Rows lock in key order, so two
        fan-outs never deadlock on each other."""
        return self._tx.advance_many(sorted(user_ids))


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

    def with_block_flags(self, *, group_id: str, sender_id: str) -> List[Tuple[str, bool]]:
        """Every member, and whether that member blocks `sender_id`."""
        rows = self._tx.all(
            "SELECT m.user_id, EXISTS (SELECT 1 FROM blocks b"
            " WHERE b.blocker_id = m.user_id AND b.blocked_id = %s)"
            " FROM group_members m WHERE m.group_id = %s",
            (sender_id, group_id),
        )
        return [(user_id, bool(blocks)) for user_id, blocks in rows]


class Messages(Repository):
    def add(self, *, message: StoredMessage, client_message_id: Optional[str]) -> None:
        self._tx.execute(
            "INSERT INTO messages (id, sender_id, recipient_id, group_id, body, sent_at, client_message_id)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s)",
            (
                message.id,
                message.sender_id,
                message.recipient_id,
                message.group_id,
                message.body,
                to_db_time(message.sent_at),
                client_message_id,
            ),
        )

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

    def add(self, *, message_id: str, sent_at: datetime, seqs: Dict[str, int]) -> None:
        when = to_db_time(sent_at)
        self._tx.executemany(
            "INSERT INTO inbox (user_id, seq, message_id, sent_at) VALUES (%s, %s, %s, %s)",
            [(user_id, seq, message_id, when) for user_id, seq in sorted(seqs.items())],
        )

    def deliveries(self, *, message_id: str) -> int:
        row = self._tx.one("SELECT COUNT(*) FROM inbox WHERE message_id = %s", (message_id,))
        return int(row[0]) if row else 0

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
