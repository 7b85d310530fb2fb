"""What the use cases answer: small values the edge turns into JSON bodies
(body()) and status codes (web.py)."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Dict, List, Optional

from ..repositories import EventRow, StoredMessage

# /read_messages' item: a message event's first keys.
READ_ITEM_KEYS = ("seq", "message_id", "kind", "sender_id", "group_id", "text", "sent_at", "attachments")


def iso(moment: datetime) -> str:
    return moment.isoformat(timespec="microseconds") + "Z"


def _about(message: StoredMessage) -> Dict[str, Any]:
    return {"message_id": message.id, "kind": "group" if message.group_id else "direct",
            "sender_id": message.sender_id, "recipient_id": message.recipient_id, "group_id": message.group_id}


def message_event(seq: int, message: StoredMessage) -> Dict[str, Any]:
    """A message in a stream, in its current state (as /sync returns it and
    the cache stores it)."""
    return {"seq": seq, "type": "message", **_about(message), "text": None if message.deleted else message.body,
            "sent_at": iso(message.sent_at), "edited_at": None if message.edited_at is None else iso(message.edited_at),
            "deleted": message.deleted, "attachments": list(message.attachments)}


def edit_event(seq: int, message: StoredMessage) -> Dict[str, Any]:
    """An edit shows its message's current text: after a deletion, none."""
    return {"seq": seq, "type": "edit", **_about(message), "text": None if message.deleted else message.body,
            "edited_at": None if message.edited_at is None else iso(message.edited_at)}


def delete_event(seq: int, message: StoredMessage) -> Dict[str, Any]:
    return {"seq": seq, "type": "delete", **_about(message)}


def read_event(seq: int, *, peer_id: str, is_group: bool, message_id: str) -> Dict[str, Any]:
    return {"seq": seq, "type": "read", "with_user_id": None if is_group else peer_id,
            "group_id": peer_id if is_group else None, "message_id": message_id}


def receipt_event(seq: int, *, reader_id: str, message_id: str) -> Dict[str, Any]:
    return {"seq": seq, "type": "receipt", "with_user_id": reader_id, "user_id": reader_id, "message_id": message_id}


def member_event(seq: int, *, group_id: str, group_name: Optional[str], user_id: str, member: bool) -> Dict[str, Any]:
    return {"seq": seq, "type": "member", "group_id": group_id, "group_name": group_name, "user_id": user_id,
            "member": member}


def event_item(row: EventRow) -> Dict[str, Any]:
    """A stored stream entry as /sync returns it: built by the same functions
    as at write time, so the cache and the database give the same JSON."""
    m = row.message
    if row.type in ("join", "leave"):
        return member_event(row.seq, group_id=row.peer_id or "", group_name=row.group_name, user_id=row.actor_id or "",
                            member=row.type == "join")
    if row.type == "receipt":
        return receipt_event(row.seq, reader_id=row.actor_id or "", message_id=m.id if m else "")
    if row.type == "read":
        return read_event(row.seq, peer_id=row.peer_id or "", is_group=row.group_name is not None,
                          message_id=m.id if m else "")
    assert m is not None, "a message, edit or delete event keeps its message until retention removes both"
    return {"message": message_event, "edit": edit_event, "delete": delete_event}[row.type](row.seq, m)


def shown_to(event: Dict[str, Any], user_id: str) -> bool:
    """Whether /read_messages shows this event to the user: a message the
    user received (or a note to self), not deleted."""
    return (event["type"] == "message" and not event["deleted"]
            and (event["sender_id"] != user_id or event["recipient_id"] == user_id))


def read_item(event: Dict[str, Any]) -> Dict[str, Any]:
    """A message event as /read_messages returns it."""
    return {key: event[key] for key in READ_ITEM_KEYS}


class Result:
    """A use case's answer (a dataclass); its JSON body is its fields unless it says otherwise."""

    def body(self) -> Dict[str, Any]:
        return asdict(self)  # type: ignore[call-overload]  # every Result is a dataclass


@dataclass(frozen=True)
class Registered(Result):
    """A new session: /register (201), /login and /link (200)."""

    user_id: str
    user_name: str
    handle: Optional[str]
    token: str
    session_id: str
    new_account: bool = True

    def body(self) -> Dict[str, Any]:
        return {"user_id": self.user_id, "user_name": self.user_name, "handle": self.handle, "token": self.token,
                "session_id": self.session_id}


@dataclass(frozen=True)
class Profile(Result):
    user_id: str
    user_name: str
    handle: Optional[str]


@dataclass(frozen=True)
class Me(Result):
    """The caller's own account (/account, /update_account)."""

    user_id: str
    user_name: str
    handle: Optional[str]
    has_password: bool
    read_receipts: bool


@dataclass(frozen=True)
class Profiles(Result):
    users: List[Profile]


@dataclass(frozen=True)
class LinkCode(Result):
    code: str
    expires_in: int


@dataclass(frozen=True)
class SessionView:
    session_id: str
    device_name: str
    created_at: str
    current: bool


@dataclass(frozen=True)
class SessionList(Result):
    sessions: List[SessionView]


@dataclass(frozen=True)
class Revoked(Result):
    revoked: int


@dataclass(frozen=True)
class Deleted(Result):
    deleted: bool


@dataclass(frozen=True)
class BlockSet(Result):
    blocking_user_id: str
    blocked_user_id: str
    blocked: bool


@dataclass(frozen=True)
class GroupCreated(Result):
    group_id: str
    group_name: str


@dataclass(frozen=True)
class MembershipSet(Result):
    group_id: str
    user_id: str
    member: bool


@dataclass(frozen=True)
class Sent(Result):
    message_id: str
    sent_at: str
    duplicate: bool
    recipients: Optional[int] = None  # group sends only

    def body(self) -> Dict[str, Any]:
        body: Dict[str, Any] = {"message_id": self.message_id, "sent_at": self.sent_at}
        if self.recipients is not None:
            body["recipients"] = self.recipients
        body["duplicate"] = self.duplicate
        return body


@dataclass(frozen=True)
class Ticket(Result):
    ticket: str  # for the WebSocket URL's query string: ?ticket=...
    expires_in: int  # seconds
    url: Optional[str]  # None: this server offers no WebSocket, long-poll instead


@dataclass(frozen=True)
class Page(Result):
    """A page of a user's inbox, and which path served it: "hit" (cache),
    "miss" (database, cache consulted) or "off" (no cache)."""

    messages: List[Dict[str, Any]]
    next_after: int
    has_more: bool
    cache: str
    wait_refused: Optional[str] = None  # a `wait` answered at once: waitslots.PER_USER or PER_PROCESS

    def body(self) -> Dict[str, Any]:
        return {"messages": self.messages, "next_after": self.next_after, "has_more": self.has_more}


@dataclass(frozen=True)
class Events(Result):
    """A page of a user's stream (/sync), and which path served it (as Page)."""

    events: List[Dict[str, Any]]
    next_after: int
    has_more: bool
    cache: str
    wait_refused: Optional[str] = None

    def body(self) -> Dict[str, Any]:
        return {"events": self.events, "next_after": self.next_after, "has_more": self.has_more}


@dataclass(frozen=True)
class Edited(Result):
    message_id: str
    edited_at: str


@dataclass(frozen=True)
class MessageDeleted(Result):
    message_id: str
    deleted: bool


@dataclass(frozen=True)
class MarkedRead(Result):
    message_id: str


@dataclass(frozen=True)
class Conversations(Result):
    conversations: List[Dict[str, Any]]
    next_before: Optional[int]


@dataclass(frozen=True)
class History(Result):
    messages: List[Dict[str, Any]]
    next_before_seq: Optional[int]


@dataclass(frozen=True)
class GroupInfo(Result):
    group_id: str
    group_name: str
    member_count: int
    members: List[Dict[str, Any]]
    next_after_user_id: Optional[str]


@dataclass(frozen=True)
class UploadUrl(Result):
    attachment_id: str
    upload: Dict[str, Any]  # {"url", "fields"}: a form POST with the file last
    expires_in: int


@dataclass(frozen=True)
class DownloadUrl(Result):
    url: str
    expires_in: int


@dataclass(frozen=True)
class HealthReport(Result):
    database: str  # "ok" | "unavailable"
    cache: str  # "ok" | "unavailable" | "off"

    @property
    def ok(self) -> bool:
        return self.database == "ok"

    def body(self) -> Dict[str, Any]:
        return {"status": "ok" if self.ok else "unavailable", "database": self.database, "cache": self.cache}
