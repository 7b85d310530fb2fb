"""One repository per table, and Deliveries for the writes of a send, which
span three tables in one round trip. Each method runs its visible,
parameterized statements (placeholders are %s for both databases; see db.Tx)
and returns decoded values. The few statements whose SQL differs by
database come from the dialect (dialects.py)."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Dict, List, Optional, Sequence, Tuple

from .db import Query, Tx
from .dialects import Result, Statement, from_db_time, to_db_time


@dataclass(frozen=True)
class StoredMessage:
    id: str
    sender_id: str
    recipient_id: Optional[str]
    group_id: Optional[str]
    body: str
    sent_at: datetime
    edited_at: Optional[datetime] = None
    deleted: bool = False  # its body is erased then
    version: int = 0  # one more with each edit and the deletion
    attachments: Tuple[Dict[str, Any], ...] = ()  # as items show them: attachment_id, content_type, size, file_name


@dataclass(frozen=True)
class InboxEntry:
    seq: int
    message: StoredMessage


@dataclass(frozen=True)
class EventRow:
    """One entry of a user's stream as stored: a message event (type
    "message", an inbox row) or another event, with its message where it has
    one (the message's current state) and its group's name (join, leave)."""

    seq: int
    type: str  # message, edit, delete, read, receipt, join, leave
    message: Optional[StoredMessage]
    peer_id: Optional[str]
    actor_id: Optional[str]
    group_name: Optional[str]


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
    read_receipts: bool = True


@dataclass(frozen=True)
class SessionRow:
    session_id: str
    device_name: str
    created_at: datetime


class Users(Repository):
    """Accounts. A deleted one keeps its row (messages it sent still name
    it), with nothing left of it but the id and deleted_at."""

    _ACCOUNT = "SELECT id, name, handle, password_hash, read_receipts FROM users"

    def register(self, *, user_id: str, name: str, created_at: datetime, handle: Optional[str],
                 password_hash: Optional[str], session_id: str, device_name: str) -> None:
        """A new account with its stream's counter and its first session, in
        one round trip; db.DuplicateKey (nothing written) when the handle is taken."""
        at = to_db_time(created_at)
        self._tx.batch([
            ("INSERT INTO users (id, name, handle, password_hash, created_at) VALUES (%s, %s, %s, %s, %s)",
             (user_id, name, handle, password_hash, at)),
            ("INSERT INTO inbox_counters (user_id, last_seq) VALUES (%s, 0)", (user_id,)),
            ("INSERT INTO sessions (id, user_id, device_name, created_at) VALUES (%s, %s, %s, %s)",
             (session_id, user_id, device_name, at)),
        ])

    def exists(self, *, user_id: str) -> bool:
        return self._tx.one("SELECT 1 FROM users WHERE id = %s AND deleted_at IS NULL", (user_id,)) is not None

    def account(self, *, user_id: str) -> Optional[Account]:
        return self._account(self._tx.one(self._ACCOUNT + " WHERE id = %s AND deleted_at IS NULL", (user_id,)))

    def by_handle(self, *, handle: str) -> Optional[Account]:
        return self._account(self._tx.one(self._ACCOUNT + " WHERE handle = %s", (handle,)))

    @staticmethod
    def accounts(*, user_ids: Sequence[str]) -> Query[List[Account]]:
        """The accounts among these ids that exist and are not deleted (one primary-key lookup each)."""
        marks = ", ".join(["%s"] * len(user_ids))
        return Query(Users._ACCOUNT + f" WHERE id IN ({marks}) AND deleted_at IS NULL" if user_ids else None,
                     tuple(user_ids), lambda rows: [_account_of(row) for row in rows])

    def update(self, *, user_id: str, name: Optional[str] = None, handle: Optional[str] = None,
               password_hash: Optional[str] = None, read_receipts: Optional[bool] = None) -> None:
        """Change what is given (None: keep it). db.DuplicateKey when the handle is taken."""
        receipts = None if read_receipts is None else int(read_receipts)
        self._tx.execute(
            "UPDATE users SET name = COALESCE(%s, name), handle = COALESCE(%s, handle),"
            " password_hash = COALESCE(%s, password_hash), read_receipts = COALESCE(%s, read_receipts)"
            " WHERE id = %s AND deleted_at IS NULL",
            (name, handle, password_hash, receipts, user_id),
        )


    def erase(self, *, user_id: str, deleted_at: datetime) -> None:
        """Delete the account: its name, handle (freed for others) and password go."""
        self._tx.execute(
            "UPDATE users SET name = '', handle = NULL, password_hash = NULL, deleted_at = %s WHERE id = %s",
            (to_db_time(deleted_at), user_id),
        )

    @staticmethod
    def _account(row: Optional[Tuple[Any, ...]]) -> Optional[Account]:
        return None if row is None else _account_of(row)


def _account_of(row: Tuple[Any, ...]) -> Account:
    user_id, name, handle, password_hash, receipts = row
    return Account(user_id, name, handle, password_hash, bool(receipts))


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
    def remove(self, *, user_id: str) -> None:
        """A deleted account's counter: nothing is delivered to it any more."""
        self._tx.execute("DELETE FROM inbox_counters WHERE user_id = %s", (user_id,))

    def last_seq(self, *, user_id: str) -> Optional[int]:
        row = self._tx.one("SELECT last_seq FROM inbox_counters WHERE user_id = %s", (user_id,))
        return None if row is None else int(row[0])


class Blocks(Repository):
    def add(self, *, blocker_id: str, blocked_id: str, created_at: datetime) -> bool:
        """False when the blocked user is not someone (any more): a deleted
        account keeps its row, which the foreign key alone would accept."""
        return self._tx.execute(
            "INSERT INTO blocks (blocker_id, blocked_id, created_at)"
            " SELECT %s, id, %s FROM users WHERE id = %s AND deleted_at IS NULL",
            (blocker_id, to_db_time(created_at), blocked_id),
        ) == 1

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

    @staticmethod
    def named(*, group_ids: Sequence[str]) -> Query[Dict[str, Tuple[str, int]]]:
        """{group id: (name, member count)} of those that exist."""
        marks = ", ".join(["%s"] * len(group_ids))
        return Query(f"SELECT id, name, member_count FROM chat_groups WHERE id IN ({marks})" if group_ids else None,
                     tuple(group_ids), lambda rows: {gid: (name, int(count)) for gid, name, count in rows})

    def free_seat(self, *, group_id: str) -> None:
        self._tx.execute("UPDATE chat_groups SET member_count = member_count - 1 WHERE id = %s", (group_id,))


class Members(Repository):
    """Reads of memberships; a join and a leave are Deliveries' (each tells every member)."""

    @staticmethod
    def groups_of(*, user_id: str) -> Query[Dict[str, int]]:
        """{group id: the seq of the user's join} of every group the user is in."""
        return Query("SELECT group_id, joined_seq FROM group_members WHERE user_id = %s", (user_id,),
                     lambda rows: {gid: int(seq) for gid, seq in rows})

    @staticmethod
    def page(*, group_id: str, after_user_id: str, limit: int) -> Query[List[Tuple[str, str, Optional[str]]]]:
        """(user id, name, handle) of up to `limit` members after `after_user_id`, in id order."""
        return Query("SELECT m.user_id, u.name, u.handle FROM group_members m JOIN users u ON u.id = m.user_id"
                     " WHERE m.group_id = %s AND m.user_id > %s ORDER BY m.user_id LIMIT %s",
                     (group_id, after_user_id, limit), lambda rows: [(uid, name, handle) for uid, name, handle in rows])

    @staticmethod
    def is_member(*, group_id: str, user_id: str) -> Query[bool]:
        return Query("SELECT 1 FROM group_members WHERE group_id = %s AND user_id = %s", (group_id, user_id), bool)


_MESSAGE = ("m.id, m.sender_id, m.recipient_id, m.group_id, m.body, m.sent_at, m.edited_at, m.deleted_at, m.version,"
            " m.attachments")


def _message_of(row: Sequence[Any]) -> StoredMessage:
    mid, sender, recipient, group, body, sent, edited, deleted, version, attached = row
    return StoredMessage(mid, sender, recipient, group, body, from_db_time(sent),
                         None if edited is None else from_db_time(edited), deleted is not None, int(version),
                         tuple(json.loads(attached)) if attached else ())


def attachments_json(message: StoredMessage) -> Optional[str]:
    return json.dumps(list(message.attachments), separators=(",", ":")) if message.attachments else None


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

    def existing(self, *, message_ids: Sequence[str]) -> List[str]:
        if not message_ids:
            return []
        marks = ", ".join(["%s"] * len(message_ids))
        return [row[0] for row in self._tx.all(f"SELECT id FROM messages WHERE id IN ({marks})", tuple(message_ids))]

    def by_client_id(self, *, sender_id: str, client_message_id: str) -> Optional[StoredMessage]:
        row = self._tx.one(f"SELECT {_MESSAGE} FROM messages m WHERE m.sender_id = %s AND m.client_message_id = %s",
                           (sender_id, client_message_id))
        return None if row is None else _message_of(row)


class Inbox(Repository):
    """Message events: one row per message in each stream that holds it
    (each recipient's and the sender's)."""

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
        """{holder: its seq} of one message's inbox rows."""
        return {user_id: int(seq) for user_id, seq in
                self._tx.all("SELECT user_id, seq FROM inbox WHERE message_id = %s", (message_id,))}

    def holds(self, *, user_id: str, message_id: str) -> bool:
        """Whether the user's stream holds the message."""
        return self._tx.one("SELECT 1 FROM inbox WHERE message_id = %s AND user_id = %s",
                            (message_id, user_id)) is not None

    def received_since(self, *, user_id: str, since: datetime, limit: int) -> List[InboxEntry]:
        """Messages the user received (and notes to self) since a time, not deleted, in seq order."""
        return self._entries(
            f"SELECT i.seq, {_MESSAGE} FROM inbox i JOIN messages m ON m.id = i.message_id"
            " WHERE i.user_id = %s AND i.sent_at >= %s AND (m.sender_id <> %s OR m.recipient_id = %s)"
            " AND m.deleted_at IS NULL ORDER BY i.seq LIMIT %s",
            (user_id, to_db_time(since), user_id, user_id, limit))

    def history(self, *, user_id: str, peer_id: str, before_seq: int, limit: int) -> List[InboxEntry]:
        """One conversation's messages in the user's stream, both directions, newest first."""
        return self._entries(
            f"SELECT i.seq, {_MESSAGE} FROM inbox i JOIN messages m ON m.id = i.message_id"
            " WHERE i.user_id = %s AND i.peer_id = %s AND i.seq < %s ORDER BY i.seq DESC LIMIT %s",
            (user_id, peer_id, before_seq, limit))

    # The conversation list's reads (usecases/browsing.py), as queries: it
    # asks the first two together, then the rest together.

    def newest_by_conversation(self, *, user_id: str) -> Query[Dict[str, int]]:
        """{conversation: the seq of its newest message} for the user, from
        ix_inbox_peer alone. MariaDB reads it as a loose index scan (one dive
        per conversation: 2 ms for 200 conversations in 100k rows) when its
        statistics say conversations are long, else as a range scan of the
        user's index entries (40 ms at 100k); left to itself it may read the
        rows through the primary key instead. Grouped by user_id too: grouped
        by peer_id alone, it never takes the loose scan."""
        return Query(f"SELECT peer_id, MAX(seq) FROM {self._tx.dialect.inbox_by_peer}"
                     " WHERE user_id = %s GROUP BY user_id, peer_id", (user_id,),
                     lambda rows: {peer: int(seq) for peer, seq in rows if peer is not None})

    @staticmethod
    def at(*, user_id: str, seqs: Sequence[int]) -> Query[List[InboxEntry]]:
        """The user's message events at these seqs (primary-key lookups)."""
        marks = ", ".join(["%s"] * len(seqs))
        return Query(f"SELECT i.seq, {_MESSAGE} FROM inbox i JOIN messages m ON m.id = i.message_id"
                     f" WHERE i.user_id = %s AND i.seq IN ({marks})" if seqs else None, (user_id, *seqs),
                     lambda rows: [InboxEntry(int(row[0]), _message_of(row[1:])) for row in rows])

    @staticmethod
    def unread(*, user_id: str, peer_ids: Sequence[str], most: int) -> Query[Dict[str, int]]:
        """{conversation: messages from others after the user's read marker
        of it, not deleted, counted up to `most`}: one range scan of
        ix_inbox_peer alone per conversation (no row read), in one statement."""
        part = ("SELECT %s, COUNT(*) FROM (SELECT 1 FROM inbox WHERE user_id = %s AND peer_id = %s AND seq >"
                " COALESCE((SELECT seq FROM read_markers WHERE user_id = %s AND peer_id = %s), 0)"
                " AND silent = 0 LIMIT %s) x")
        params: List[Any] = []
        for peer in peer_ids:
            params += [peer, user_id, peer, user_id, peer, most]
        return Query(" UNION ALL ".join([part] * len(peer_ids)) if peer_ids else None, tuple(params),
                     lambda rows: {peer: int(count) for peer, count in rows})

    def _entries(self, sql: str, params: Sequence[object]) -> List[InboxEntry]:
        return [InboxEntry(int(row[0]), _message_of(row[1:])) for row in self._tx.all(sql, params)]


# A stream entry's columns, the same for both tables: a message event joins
# its message; another event its message (if any) and the group it names.
_STREAM_PAGE = (
    "SELECT * FROM (SELECT i.seq, 'message' AS type, " + _MESSAGE + ", i.peer_id, NULL AS actor_id,"
    " NULL AS group_name FROM inbox i JOIN messages m ON m.id = i.message_id"
    " WHERE i.user_id = %s AND i.seq > %s ORDER BY i.seq LIMIT %s) a"
    " UNION ALL SELECT * FROM (SELECT e.seq, e.type, " + _MESSAGE + ", e.peer_id, e.actor_id, g.name"
    " FROM events e LEFT JOIN messages m ON m.id = e.message_id LEFT JOIN chat_groups g ON g.id = e.peer_id"
    " WHERE e.user_id = %s AND e.seq > %s ORDER BY e.seq LIMIT %s) b"
    " ORDER BY seq LIMIT %s"
)


class Stream(Repository):
    """A user's stream: inbox rows and events rows, one sequence."""

    def after(self, *, user_id: str, after: int, limit: int) -> List[EventRow]:
        """The entries after the cursor, in seq order: one statement, so one
        snapshot of both tables (a commit between two reads could leave a gap)."""
        rows = self._tx.all(_STREAM_PAGE, (user_id, after, limit, user_id, after, limit, limit))
        return [EventRow(int(seq), kind, None if mid is None else _message_of((mid, *rest[:9])), peer, actor, group)
                for seq, kind, mid, *rest, peer, actor, group in rows]

    def remove(self, *, user_id: str) -> None:
        """Every event of the user (a deleted account's; its inbox rows go with Inbox.remove_stream)."""
        self._tx.execute("DELETE FROM events WHERE user_id = %s", (user_id,))
        self._tx.execute("DELETE FROM read_markers WHERE user_id = %s", (user_id,))


class Events(Repository):
    """Retention of the events that are not messages."""

    def holders_of(self, *, message_ids: Sequence[str]) -> List[str]:
        """The users with events that name these messages."""
        if not message_ids:
            return []
        marks = ", ".join(["%s"] * len(message_ids))
        return [row[0] for row in self._tx.all(f"SELECT DISTINCT user_id FROM events WHERE message_id IN ({marks})",
                                               tuple(message_ids))]

    def remove_unheld_of(self, *, message_ids: Sequence[str]) -> int:
        """Delete the events of these messages that no inbox row holds any more."""
        if not message_ids:
            return 0
        marks = ", ".join(["%s"] * len(message_ids))
        return self._tx.execute(f"DELETE FROM events WHERE message_id IN ({marks})"
                                " AND NOT EXISTS (SELECT 1 FROM inbox i WHERE i.message_id = events.message_id)",
                                tuple(message_ids))

    def oldest_unattached(self, *, before: datetime, limit: int) -> List[Tuple[str, int]]:
        """(user_id, seq) of up to `limit` events older than `before` that name no message (joins, leaves)."""
        return [(user_id, int(seq)) for user_id, seq in self._tx.all(
            "SELECT user_id, seq FROM events WHERE created_at < %s AND message_id IS NULL ORDER BY created_at LIMIT %s",
            (to_db_time(before), limit))]

    def remove(self, *, keys: Sequence[Tuple[str, int]]) -> int:
        if not keys:
            return 0
        where = " OR ".join(["(user_id = %s AND seq = %s)"] * len(keys))
        return self._tx.execute(f"DELETE FROM events WHERE {where}", tuple(v for key in keys for v in key))


@dataclass(frozen=True)
class Attachment:
    attachment_id: str
    uploader_id: str
    content_type: str
    size: int  # declared: the most the upload may hold
    file_name: Optional[str]
    message_id: Optional[str]

    @property
    def key(self) -> str:
        return attachment_key(self.uploader_id, self.attachment_id)

    @property
    def upload_key(self) -> str:
        return upload_key(self.uploader_id, self.attachment_id)


def upload_key(uploader_id: str, attachment_id: str) -> str:
    """Where the upload form writes (a day's lifecycle rule clears it deployed)."""
    return f"attachments/uploads/{uploader_id}/{attachment_id}"


def attachment_key(uploader_id: str, attachment_id: str) -> str:
    """Where the file a message carries is kept and served from: no form writes here."""
    return f"attachments/files/{uploader_id}/{attachment_id}"


class Attachments(Repository):
    ROW = "SELECT a.id, a.uploader_id, a.content_type, a.size, a.file_name, a.message_id FROM attachments a"

    def add(self, *, attachment_id: str, uploader_id: str, content_type: str, size: int, file_name: Optional[str],
            created_at: datetime) -> None:
        self._tx.execute("INSERT INTO attachments (id, uploader_id, content_type, size, file_name, created_at)"
                         " VALUES (%s, %s, %s, %s, %s, %s)",
                         (attachment_id, uploader_id, content_type, size, file_name, to_db_time(created_at)))

    def of_ids(self, *, attachment_ids: Sequence[str]) -> List[Attachment]:
        if not attachment_ids:
            return []
        marks = ", ".join(["%s"] * len(attachment_ids))
        return [Attachment(*row) for row in self._tx.all(self.ROW + f" WHERE a.id IN ({marks})",
                                                         tuple(attachment_ids))]

    def claim(self, *, attachment_ids: Sequence[str], uploader_id: str, message_id: str,
              asked_after: datetime) -> int:
        """Attach these uploads of the uploader to the message, each once and
        only if asked for after `asked_after` (older ones are the sweep's):
        how many were free to attach."""
        marks = ", ".join(["%s"] * len(attachment_ids))
        return self._tx.execute(f"UPDATE attachments SET message_id = %s WHERE id IN ({marks})"
                                " AND uploader_id = %s AND message_id IS NULL AND created_at > %s",
                                (message_id, *attachment_ids, uploader_id, to_db_time(asked_after)))

    def unheld_to(self, *, recipient_id: str) -> List[Attachment]:
        """The attachments of direct messages to the user that no stream holds (a deleted account's)."""
        # The messages by ix_messages_recipient, then theirs by ix_attachments_message:
        # joined, an empty-looking attachments table would be planned as a scan.
        messages = [row[0] for row in self._tx.all(
            "SELECT m.id FROM messages m WHERE m.recipient_id = %s"
            " AND NOT EXISTS (SELECT 1 FROM inbox i WHERE i.message_id = m.id)", (recipient_id,))]
        return [a for start in range(0, len(messages), 1000)
                for a in self.of_messages(message_ids=messages[start:start + 1000])]

    def held(self, *, attachment_id: str, user_id: str) -> Optional[Attachment]:
        """The attachment if the user's stream holds a message, not deleted, that carries it."""
        row = self._tx.one(self.ROW + " JOIN inbox i ON i.message_id = a.message_id AND i.user_id = %s"
                           " JOIN messages m ON m.id = a.message_id WHERE a.id = %s AND m.deleted_at IS NULL",
                           (user_id, attachment_id))
        return None if row is None else Attachment(*row)

    def of_messages(self, *, message_ids: Sequence[str]) -> List[Attachment]:
        if not message_ids:
            return []
        marks = ", ".join(["%s"] * len(message_ids))
        return [Attachment(*row) for row in self._tx.all(self.ROW + f" WHERE a.message_id IN ({marks})",
                                                         tuple(message_ids))]

    def unattached_before(self, *, before: datetime, limit: int) -> List[Attachment]:
        return [Attachment(*row) for row in self._tx.all(
            self.ROW + " WHERE a.created_at < %s AND a.message_id IS NULL ORDER BY a.created_at LIMIT %s",
            (to_db_time(before), limit))]

    def remove(self, *, attachment_ids: Sequence[str]) -> int:
        if not attachment_ids:
            return 0
        marks = ", ".join(["%s"] * len(attachment_ids))
        return self._tx.execute(f"DELETE FROM attachments WHERE id IN ({marks})", tuple(attachment_ids))


class ReadMarkers(Repository):
    @staticmethod
    def of(*, user_id: str, peer_ids: Sequence[str]) -> Query[Dict[str, Tuple[int, str]]]:
        """{conversation: (seq, message id) read up to} of those the user has read."""
        marks = ", ".join(["%s"] * len(peer_ids))
        return Query(f"SELECT peer_id, seq, message_id FROM read_markers WHERE user_id = %s AND peer_id IN ({marks})"
                     if peer_ids else None, (user_id, *peer_ids),
                     lambda rows: {peer: (int(seq), mid) for peer, seq, mid in rows})


@dataclass(frozen=True)
class Change:
    """What an edit or a deletion did (Deliveries.edit, erase)."""

    changed: bool  # False: nothing was changed, and no event taken
    message: Optional[StoredMessage]  # as it is now; None: no such message
    seqs: Dict[str, int]  # each holder's seq of the event
    stale: Dict[str, List[int]]  # each holder's entries that showed the old text
    files: List["Attachment"] = field(default_factory=list)  # a deleted message's attachments (its files go too)


_NEW_MESSAGE = ("INSERT INTO messages (id, sender_id, recipient_id, group_id, body, sent_at, client_message_id,"
                " attachments)")
_NEW_EVENTS = "INSERT INTO events (user_id, seq, type, peer_id, message_id, actor_id, created_at)"


class Deliveries(Repository):
    """Writes that take seqs: each stream's next seq (its counter row, locked
    until commit, marked with the write's id) and that stream's entry,
    selected from exactly the counters the write marked, as one batch
    (Tx.batch: one round trip on MySQL) whatever the number of streams.
    Counters are always locked in user id order (one statement takes them
    all), so two writes never deadlock. A used idempotency key raises
    db.DuplicateKey, an unknown user db.MissingReference."""

    def direct(self, *, message: StoredMessage, client_message_id: Optional[str]) -> Optional[Dict[str, int]]:
        """The recipient's and the sender's seqs (one for a note to self);
        None when the recipient blocks the sender."""
        sender, recipient = message.sender_id, message.recipient_id or ""
        mine = "FROM inbox_counters c WHERE c.user_id IN (%s, %s) AND c.last_message_id = %s"
        _, taken, _, seqs = self._tx.batch([
            (_NEW_MESSAGE + " VALUES (%s, %s, %s, NULL, %s, %s, %s, %s)",
             (message.id, sender, recipient, message.body, to_db_time(message.sent_at), client_message_id,
              attachments_json(message))),
            ("UPDATE inbox_counters SET last_seq = last_seq + 1, last_message_id = %s WHERE user_id IN (%s, %s)"
             " AND NOT EXISTS (SELECT 1 FROM blocks WHERE blocker_id = %s AND blocked_id = %s)",
             (message.id, recipient, sender, recipient, sender)),
            ("INSERT INTO inbox (user_id, seq, message_id, sent_at, peer_id, silent)"
             " SELECT c.user_id, c.last_seq, %s, %s, CASE WHEN c.user_id = %s THEN %s ELSE %s END,"
             " CASE WHEN c.user_id = %s THEN 1 ELSE 0 END " + mine,
             (message.id, to_db_time(message.sent_at), sender, recipient, sender, sender, recipient, sender,
              message.id)),
            ("SELECT c.user_id, c.last_seq " + mine, (recipient, sender, message.id)),
        ])
        return {user_id: int(seq) for user_id, seq in seqs.rows} if taken.rowcount else None

    def group(self, *, message: StoredMessage, client_message_id: Optional[str]) -> Optional[Dict[str, int]]:
        """Each member's seq (the sender's included; not those who block the
        sender); None when no message row was stored because the sender is
        no member. The message row is inserted only for a member, and its
        foreign key share-locks the group's row until commit, so no one joins
        or leaves while the message is delivered."""
        dialect, group = self._tx.dialect, message.group_id or ""
        members = "FROM group_members m JOIN inbox_counters c ON c.user_id = m.user_id WHERE m.group_id = %s"
        stored, _, _, seqs = self._tx.batch([
            (_NEW_MESSAGE + " SELECT %s, %s, NULL, %s, %s, %s, %s, %s FROM group_members"
                            " WHERE group_id = %s AND user_id = %s",
             (message.id, message.sender_id, group, message.body, to_db_time(message.sent_at), client_message_id,
              attachments_json(message), group, message.sender_id)),
            dialect.take_member_seqs(group_id=group, marker=message.id, unless_blocking=message.sender_id),
            ("INSERT INTO inbox (user_id, seq, message_id, sent_at, peer_id, silent)"
             " SELECT c.user_id, c.last_seq, %s, %s, %s, CASE WHEN c.user_id = %s THEN 1 ELSE 0 END"
             f" {members} AND c.last_message_id = %s",
             (message.id, to_db_time(message.sent_at), group, message.sender_id, group, message.id)),
            _seqs_select(dialect, members, group, message.id),
        ])
        return _seqs_of(seqs) if stored.rowcount == 1 else None

    def edit(self, *, message_id: str, sender_id: str, body: str, at: datetime, sent_after: datetime,
             marker: str) -> "Change":
        """Replace the text of the sender's message if it is not deleted and
        was sent after `sent_after`, with an `edit` event to every stream
        that holds it."""
        return self._change(
            ("UPDATE messages SET body = %s, edited_at = %s, version = version + 1 WHERE id = %s AND sender_id = %s"
             " AND deleted_at IS NULL AND sent_at > %s",
             (body, to_db_time(at), message_id, sender_id, to_db_time(sent_after))),
            message_id=message_id, kind="edit", marker=marker, at=at, changed="edited_at")

    def erase(self, *, message_id: str, sender_id: str, at: datetime, marker: str) -> "Change":
        """Delete the sender's message (its text erased, its row kept for the
        events that name it), with a `delete` event to every stream that
        holds it; nothing when it is already deleted. Its inbox rows stop
        counting as unread."""
        return self._change(
            ("UPDATE messages SET body = '', attachments = NULL, deleted_at = %s, version = version + 1"
             " WHERE id = %s AND sender_id = %s AND deleted_at IS NULL", (to_db_time(at), message_id, sender_id)),
            message_id=message_id, kind="delete", marker=marker, at=at, changed="deleted_at",
            then=[("UPDATE inbox SET silent = 1 WHERE message_id = %s AND EXISTS"
                   " (SELECT 1 FROM messages x WHERE x.id = %s AND x.deleted_at = %s)",
                   (message_id, message_id, to_db_time(at))),
                  (Attachments.ROW + " WHERE a.message_id = %s", (message_id,))],
            files=True)

    def _change(self, change: Statement, *, message_id: str, kind: str, marker: str, at: datetime,
                changed: str, then: Sequence[Statement] = (), files: bool = False) -> "Change":
        """The change and its events in one batch: the events are taken only
        if the change's `changed` column now holds `at` (this write changed
        the row, which stays locked until commit). With the message as it is
        after the change, each holder's new seq, and the seqs of its entries
        the change made stale (what showed the old text)."""
        dialect = self._tx.dialect
        holders = "FROM inbox i JOIN inbox_counters c ON c.user_id = i.user_id WHERE i.message_id = %s"
        done, now, held, _, _, seqs, *rest = self._tx.batch([
            change,
            (f"SELECT {_MESSAGE} FROM messages m WHERE m.id = %s", (message_id,)),
            ("SELECT user_id, seq FROM inbox WHERE message_id = %s UNION ALL"  # before this write's own event
             " SELECT user_id, seq FROM events WHERE message_id = %s AND type = 'edit'", (message_id, message_id)),
            dialect.take_holder_seqs(message_id=message_id, marker=marker, changed=changed, at=to_db_time(at)),
            (_NEW_EVENTS + f" SELECT c.user_id, c.last_seq, %s, i.peer_id, %s, NULL, %s {holders}"
                           " AND c.last_message_id = %s", (kind, message_id, to_db_time(at), message_id, marker)),
            _seqs_select(dialect, holders, message_id, marker),
            *then,
        ])
        new = _seqs_of(seqs)
        stale: Dict[str, List[int]] = {}
        for user_id, seq in held.rows:
            if user_id in new:
                stale.setdefault(user_id, []).append(int(seq))
        return Change(done.rowcount == 1, _message_of(now.rows[0]) if now.rows else None, new, stale,
                      [Attachment(*row) for row in rest[-1].rows] if files else [])

    def join(self, *, group_id: str, user_id: str, capacity: int, marker: str,
             at: datetime) -> Optional[MemberChange]:
        """Take a seat if there is room, add the member, a `join` event to
        every member (the user included) and the join's seq on the member's
        row, in one batch; each step after the seat only if this write took
        it (chat_groups.changed_by). None when no seat was taken (no such
        group, or it is full). db.DuplicateKey when the user is a member
        already (the seat taken is then the caller's to give back),
        db.MissingReference when there is no such user."""
        seat = ("UPDATE chat_groups SET member_count = member_count + 1, changed_by = %s WHERE id = %s"
                " AND member_count < %s", (marker, group_id, capacity))
        add = ("INSERT INTO group_members (group_id, user_id, joined_at) SELECT id, %s, %s FROM chat_groups"
               " WHERE id = %s AND changed_by = %s", (user_id, to_db_time(at), group_id, marker))
        joined_seq = ("UPDATE group_members SET joined_seq = (SELECT last_seq FROM inbox_counters WHERE user_id = %s"
                      " AND last_message_id = %s) WHERE group_id = %s AND user_id = %s AND EXISTS"
                      " (SELECT 1 FROM chat_groups WHERE id = %s AND changed_by = %s)",
                      (user_id, marker, group_id, user_id, group_id, marker))
        seated, _, name, *_, seqs, _ = self._tx.batch(
            [seat, add, _group_name(group_id), *self._member_event("join", group_id, user_id, marker, at), joined_seq])
        return MemberChange(_seqs_of(seqs), name.rows[0][0]) if seated.rowcount == 1 else None

    def leave(self, *, group_id: str, user_id: str, marker: str, at: datetime) -> Optional[MemberChange]:
        """Give the user's seat back, a `leave` event to every member (the
        user included: its other devices hear it) and the membership gone,
        in one batch. None when the user is no member (or no such group)."""
        seat = ("UPDATE chat_groups SET member_count = member_count - 1, changed_by = %s WHERE id = %s"
                " AND EXISTS (SELECT 1 FROM group_members WHERE group_id = %s AND user_id = %s)",
                (marker, group_id, group_id, user_id))
        gone = ("DELETE FROM group_members WHERE group_id = %s AND user_id = %s", (group_id, user_id))
        seated, name, *_, seqs, _ = self._tx.batch(
            [seat, _group_name(group_id), *self._member_event("leave", group_id, user_id, marker, at), gone])
        return MemberChange(_seqs_of(seqs), name.rows[0][0]) if seated.rowcount == 1 else None

    def _member_event(self, kind: str, group_id: str, user_id: str, marker: str, at: datetime) -> List[Statement]:
        """A `join` or `leave` event of `user_id` for every member of the group
        (if this write changed the member count), and each one's seq."""
        dialect = self._tx.dialect
        members = "FROM group_members m JOIN inbox_counters c ON c.user_id = m.user_id WHERE m.group_id = %s"
        return [
            dialect.take_member_seqs(group_id=group_id, marker=marker, unless_blocking=None),
            (_NEW_EVENTS + f" SELECT c.user_id, c.last_seq, %s, %s, NULL, %s, %s {members} AND c.last_message_id = %s",
             (kind, group_id, user_id, to_db_time(at), group_id, marker)),
            _seqs_select(dialect, members, group_id, marker),
        ]

    def read(self, *, reader_id: str, peer_id: str, message_id: str, receipt_to: Optional[str], marker: str,
             at: datetime) -> Optional[Dict[str, int]]:
        """Move the reader's marker of the conversation forward to the
        message (never back) and, if it moved, a `read` event for the reader
        and, given `receipt_to`, a `receipt` for that user unless the reader
        turned receipts off: one batch. Each holder's seq (none when the
        marker was there already); None when the reader's stream does not
        hold the message in this conversation."""
        place = ("SELECT seq FROM inbox WHERE message_id = %s AND user_id = %s AND peer_id = %s",
                 (message_id, reader_id, peer_id))
        users = [reader_id] if receipt_to is None else [reader_id, receipt_to]
        marks = ", ".join(["%s"] * len(users))
        mine = f"FROM inbox_counters c WHERE c.user_id IN ({marks}) AND c.last_message_id = %s"
        held, _, _, _, _, seqs = self._tx.batch([
            place,
            # The conversation's first read: a marker at 0, moved below.
            (f"{self._tx.dialect.insert_ignore} INTO read_markers (user_id, peer_id, seq, message_id)"
             " SELECT user_id, peer_id, 0, message_id FROM inbox WHERE message_id = %s AND user_id = %s"
             " AND peer_id = %s", place[1]),
            (f"UPDATE read_markers SET seq = ({place[0]}), message_id = %s, moved_by = %s"
             f" WHERE user_id = %s AND peer_id = %s AND seq < ({place[0]})",
             (*place[1], message_id, marker, reader_id, peer_id, *place[1])),
            (f"UPDATE inbox_counters SET last_seq = last_seq + 1, last_message_id = %s WHERE user_id IN ({marks})"
             " AND EXISTS (SELECT 1 FROM read_markers WHERE user_id = %s AND peer_id = %s AND moved_by = %s)"
             " AND (user_id = %s OR EXISTS (SELECT 1 FROM users WHERE id = %s AND read_receipts = 1))",
             (marker, *users, reader_id, peer_id, marker, reader_id, reader_id)),
            (_NEW_EVENTS + " SELECT c.user_id, c.last_seq, CASE WHEN c.user_id = %s THEN 'read' ELSE 'receipt' END,"
                           f" CASE WHEN c.user_id = %s THEN %s ELSE %s END, %s, %s, %s {mine}",
             (reader_id, reader_id, peer_id, reader_id, message_id, reader_id, to_db_time(at), *users, marker)),
            ("SELECT c.user_id, c.last_seq " + mine, (*users, marker)),
        ])
        if not held.rows:
            return None
        return {user_id: int(seq) for user_id, seq in seqs.rows}


@dataclass(frozen=True)
class MemberChange:
    """What a join or a leave did (Deliveries.join, leave)."""

    seqs: Dict[str, int]  # each member's seq of the event
    group_name: str


def _group_name(group_id: str) -> Statement:
    return ("SELECT name FROM chat_groups WHERE id = %s", (group_id,))


def _seqs_select(dialect: Any, source: str, target: str, marker: str) -> Statement:
    """Every counter a write advanced, as one row of one text (reading 10,000
    rows one by one would cost the driver more than the database). In READ
    COMMITTED a read of our own updates, no locks."""
    return (f"SELECT {dialect.seqs_as_text('c.user_id', 'c.last_seq')} {source} AND c.last_message_id = %s",
            (target, marker))


def _seqs_of(result: Result) -> Dict[str, int]:
    """'user_id:seq,user_id:seq,...' (or NULL for none) as {user_id: seq}."""
    text = result.rows[0][0] if result.rows else None
    if not text:
        return {}
    pairs = (pair.split(":") for pair in (text.decode() if isinstance(text, bytes) else text).split(","))
    return {user_id: int(seq) for user_id, seq in pairs}
