"""What every use case depends on, and the checks they all make."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable, FrozenSet, Optional

from .. import keys
from ..auth import TokenSigner
from ..cache import InboxCache
from ..connections import Connections, LocalConnections
from ..contract import MAX_WAIT_SECONDS
from ..db import Database, Tx
from ..errors import Forbidden, UserNotFound
from ..once import UsedOnce
from ..push import Pusher
from ..ratelimit import Limit, RateLimiter
from ..repositories import Users
from ..sessions import SessionStates
from ..settings import ATTACHMENT_TYPES
from ..storage import Storage
from ..waitslots import WaitSlots
from ..wakeups import Wakeups


def utc_now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


@dataclass(frozen=True)
class Limits:
    """Rate limits per class of request; None = unlimited."""

    sends: Optional[Limit] = None  # /send and /send_group, per acting user
    reads: Optional[Limit] = None  # /read_messages, per acting user
    writes: Optional[Limit] = None  # /block, /create_group, /update_group, per caller
    registrations: Optional[Limit] = None  # /register, per source network
    tickets: Optional[Limit] = None  # /connect_ticket, per acting user
    frames: Optional[Limit] = None  # WebSocket frames, per connection
    # On by default: wrong passwords and link codes, per handle and per source network.
    failures_per_handle: Optional[Limit] = Limit("sign-in failures", 10, 15 * 60_000)
    failures_per_source: Optional[Limit] = Limit("sign-in failures", 50, 15 * 60_000)


@dataclass(frozen=True)
class Deps:
    db: Database
    signer: TokenSigner
    auth_enabled: bool
    max_group_members: int
    cache: Optional[InboxCache] = None
    limiter: RateLimiter = field(default_factory=RateLimiter)  # in Redis when there is one
    limits: Limits = field(default_factory=Limits)
    wakeups: Wakeups = field(default_factory=Wakeups)
    long_poll_max_seconds: int = MAX_WAIT_SECONDS
    wait_slots: WaitSlots = field(default_factory=lambda: WaitSlots(per_user=5, per_process=64))
    # WebSocket push: who is connected, and how frames are posted (None: not offered).
    connections: Connections = field(default_factory=LocalConnections)
    pusher: Optional[Pusher] = None
    websocket_url: Optional[str] = None
    retention_days: Optional[int] = None  # None: keep every message
    edit_window_hours: int = 48
    storage: Optional[Storage] = None  # attachments; None: not offered
    max_attachment_bytes: int = 25 * 1024 * 1024
    attachment_types: FrozenSet[str] = frozenset(ATTACHMENT_TYPES)
    now: Callable[[], datetime] = utc_now
    # Whether a token's session is live (None: the database's answer, kept 30 s in this process).
    sessions: Optional[SessionStates] = None
    used_tickets: UsedOnce = field(default_factory=lambda: UsedOnce(keys.ticket))

    def __post_init__(self) -> None:
        if self.sessions is None:  # frozen: set once, here
            object.__setattr__(self, "sessions", SessionStates.over(self.db))

    def session_states(self) -> SessionStates:
        assert self.sessions is not None  # __post_init__
        return self.sessions

    def act_as(self, caller: Optional[str], parameter: str, user_id: str) -> None:
        """The acting user must be the token's user (caller None: auth is off)."""
        if caller is not None and caller != user_id:
            raise Forbidden(f"{parameter} must be the user the token was issued to")

    def limit(self, limit: Optional[Limit], subject: str) -> None:
        self.limiter.require(limit, subject)  # asked with the request's next Redis round trip


def raise_unknown_users(tx: Tx, **users: str) -> None:
    """Raise UserNotFound for the first unknown user among `users` (parameter=id)."""
    for parameter, user_id in users.items():
        if not Users(tx).exists(user_id=user_id):
            raise UserNotFound(f"{parameter}: no user {user_id}")
