"""What the use cases answer: small values the edge turns into JSON bodies
(body()) and status codes (web.py)."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Dict, List, Optional

from ..repositories import StoredMessage


def iso(moment: datetime) -> str:
    return moment.isoformat(timespec="microseconds") + "Z"


def message_item(seq: int, message: StoredMessage) -> Dict[str, Any]:
    """One message as /read_messages returns it (and the cache stores it)."""
    return {
        "seq": seq,
        "message_id": message.id,
        "kind": "group" if message.group_id else "direct",
        "sender_id": message.sender_id,
        "group_id": message.group_id,
        "text": message.body,
        "sent_at": iso(message.sent_at),
    }


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
class HealthReport(Result):
    database: str  # "ok" | "unavailable"
    cache: str  # "ok" | "unavailable" | "off"

    @property
    def ok(self) -> bool:
        return self.database == "ok"

    def body(self) -> Dict[str, Any]:
        return {"status": "ok" if self.ok else "unavailable", "database": self.database, "cache": self.cache}
