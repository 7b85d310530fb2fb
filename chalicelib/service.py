"""The use cases. Each is one unit of work against the database; rules that
the contract states (blocking, membership, idempotency, the cursor) live
here and raise domain errors, which the edge maps to HTTP."""
from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Dict, List, Optional, Tuple

from .auth import TokenSigner
from .cache import Hit, InboxCache, Miss
from .db import Database, DuplicateKey, MissingReference, Tx
from .ratelimit import Limit, RateLimiter
from .errors import (
    BadRequest,
    Blocked,
    CursorAhead,
    Forbidden,
    GroupFull,
    GroupNotFound,
    IdempotencyConflict,
    NotAMember,
    UserNotFound,
)
from .repositories import Blocks, Groups, Inbox, InboxCounters, Members, Messages, StoredMessage, Users



def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def iso(moment: datetime) -> str:
    return moment.isoformat(timespec="microseconds") + "Z"


def _message_item(seq: int, message: StoredMessage) -> Dict[str, Any]:
    """One message as /read_messages returns it (and as the cache stores it)."""
    return {
        "seq": seq,
        "message_id": message.id,
        "kind": "group" if message.group_id else "direct",
        "sender_id": message.sender_id,
        "group_id": message.group_id,
        "text": message.body,
        "sent_at": iso(message.sent_at),
    }


def _entry_json(item: Dict[str, Any]) -> str:
    return json.dumps(item, separators=(",", ":"))


@dataclass(frozen=True)
class Page:
    """A page of a user's inbox, and which path served it: "hit" (cache),
    "miss" (database, cache consulted) or "off" (no cache)."""

    messages: List[Dict[str, Any]]
    next_after: int
    has_more: bool
    cache: str

    def body(self) -> Dict[str, Any]:
        return {"messages": self.messages, "next_after": self.next_after, "has_more": self.has_more}


@dataclass(frozen=True)
class Health:
    database: str  # "ok" | "unavailable"
    cache: str  # "ok" | "unavailable" | "off"

    @property
    def ok(self) -> bool:
        return self.database == "ok"

    def body(self) -> Dict[str, Any]:
        return {"status": "ok" if self.ok else "unavailable", "database": self.database, "cache": self.cache}


@dataclass(frozen=True)
class Limits:
    """Rate limits per class of request; None = unlimited."""

    sends: Optional[Limit] = None
    reads: Optional[Limit] = None
    registrations: Optional[Limit] = None


# What a send's transaction hands back: the response, and each recipient's seq.
_Sent = Tuple[Dict[str, Any], Dict[str, int], Optional[StoredMessage]]


class Messaging:
    def __init__(
        self,
        *,
        db: Database,
        signer: TokenSigner,
        auth_enabled: bool,
        max_group_members: int,
        cache: Optional[InboxCache] = None,
        limits: Optional[Limits] = None,
    ) -> None:
        self._db = db
        self._cache = cache
        self._limits = limits or Limits()
        # Limits live in Redis; without a cache there is nothing to count in.
        self._limiter = RateLimiter(cache) if cache is not None else None
        self._signer = signer
        self._auth_enabled = auth_enabled
        self._max_group_members = max_group_members

    # ------------------------------------------------------------------ auth

    def authenticate(self, authorization: Optional[str]) -> Optional[str]:
        """The caller's user id from a Bearer token; None when auth is off."""
        if not self._auth_enabled:
            return None
        return self._signer.user_from_header(authorization)

    def _act_as(self, caller: Optional[str], parameter: str, user_id: str) -> None:
        if caller is not None and caller != user_id:
            raise Forbidden(f"{parameter} must be the user the token was issued to")

    def _limit(self, limit: Optional[Limit], subject: str) -> None:
        if self._limiter is not None:
            self._limiter.check(limit, subject)

    # ------------------------------------------------------------------ users

    def register(self, *, user_name: str, source_ip: str) -> Dict[str, Any]:
        self._limit(self._limits.registrations, f"ip:{source_ip}")
        user_id = str(uuid.uuid4())

        def work(tx: Tx) -> None:
            Users(tx).add(user_id=user_id, name=user_name, created_at=_now())
            InboxCounters(tx).add(user_id=user_id)

        self._db.run(work, write=True)
        return {"user_id": user_id, "user_name": user_name, "token": self._signer.issue(user_id)}

    def set_block(self, *, caller: Optional[str], blocking_user_id: str, blocked_user_id: str, block: bool) -> Dict[str, Any]:
        self._act_as(caller, "blocking_user_id", blocking_user_id)
        if blocking_user_id == blocked_user_id:
            raise BadRequest("blocked_user_id", "a user cannot block themselves")

        def work(tx: Tx) -> None:
            blocks = Blocks(tx)
            if block:
                try:
                    blocks.add(blocker_id=blocking_user_id, blocked_id=blocked_user_id, created_at=_now())
                except DuplicateKey:
                    pass  # already blocked: blocking is idempotent
                except MissingReference:
                    self._raise_unknown_users(tx, blocking_user_id=blocking_user_id, blocked_user_id=blocked_user_id)
            elif blocks.remove(blocker_id=blocking_user_id, blocked_id=blocked_user_id) == 0:
                self._raise_unknown_users(tx, blocking_user_id=blocking_user_id, blocked_user_id=blocked_user_id)

        self._db.run(work, write=True)
        return {"blocking_user_id": blocking_user_id, "blocked_user_id": blocked_user_id, "blocked": block}

    @staticmethod
    def _raise_unknown_users(tx: Tx, **users: str) -> None:
        """Raise UserNotFound for the first unknown user among `users`."""
        for parameter, user_id in users.items():
            if not Users(tx).exists(user_id=user_id):
                raise UserNotFound(f"{parameter}: no user {user_id}")

    # ------------------------------------------------------------------ groups

    def create_group(self, *, group_name: str) -> Dict[str, Any]:
        group_id = str(uuid.uuid4())
        self._db.run(lambda tx: Groups(tx).add(group_id=group_id, name=group_name, created_at=_now()), write=True)
        return {"group_id": group_id, "group_name": group_name}

    def set_membership(self, *, caller: Optional[str], user_id: str, group_id: str, member: bool) -> Dict[str, Any]:
        self._act_as(caller, "user_id", user_id)

        def join(tx: Tx) -> None:
            groups, members = Groups(tx), Members(tx)
            if not groups.take_seat(group_id=group_id, capacity=self._max_group_members):
                if not groups.exists(group_id=group_id):
                    raise GroupNotFound(f"group_id: no group {group_id}")
                if members.is_member(group_id=group_id, user_id=user_id):
                    return
                raise GroupFull(f"group {group_id} has {self._max_group_members} members, the maximum")
            try:
                members.add(group_id=group_id, user_id=user_id, joined_at=_now())
            except DuplicateKey:
                groups.free_seat(group_id=group_id)  # already a member: joining is idempotent
            except MissingReference:
                raise UserNotFound(f"user_id: no user {user_id}") from None

        def leave(tx: Tx) -> None:
            if Members(tx).remove(group_id=group_id, user_id=user_id) == 1:
                Groups(tx).free_seat(group_id=group_id)
                return
            if not Groups(tx).exists(group_id=group_id):
                raise GroupNotFound(f"group_id: no group {group_id}")
            self._raise_unknown_users(tx, user_id=user_id)

        self._db.run(join if member else leave, write=True)
        return {"group_id": group_id, "user_id": user_id, "member": member}

    # ------------------------------------------------------------------ sending

    def send(
        self, *, caller: Optional[str], sender_id: str, recipient_id: str, text: str, client_message_id: Optional[str]
    ) -> Dict[str, Any]:
        self._act_as(caller, "sending_user_id", sender_id)
        self._limit(self._limits.sends, sender_id)

        def work(tx: Tx) -> _Sent:
            message = StoredMessage(str(uuid.uuid4()), sender_id, recipient_id, None, text, _now())
            try:
                Messages(tx).add(message=message, client_message_id=client_message_id)
            except DuplicateKey:
                return self._replay(tx, message, client_message_id), {}, None
            except MissingReference:
                self._raise_unknown_users(tx, receiving_user_id=recipient_id, sending_user_id=sender_id)
                raise
            seq = InboxCounters(tx).advance_unless_blocked(user_id=recipient_id, sender_id=sender_id)
            if seq is None:
                raise Blocked("the receiving user has blocked the sending user")
            Inbox(tx).add(message_id=message.id, sent_at=message.sent_at, seqs={recipient_id: seq})
            return {"message_id": message.id, "sent_at": iso(message.sent_at), "duplicate": False}, {recipient_id: seq}, message

        return self._deliver(self._db.run(work, write=True))

    def send_group(
        self, *, caller: Optional[str], sender_id: str, group_id: str, text: str, client_message_id: Optional[str]
    ) -> Dict[str, Any]:
        self._act_as(caller, "sending_user_id", sender_id)
        self._limit(self._limits.sends, sender_id)

        def work(tx: Tx) -> _Sent:
            message = StoredMessage(str(uuid.uuid4()), sender_id, None, group_id, text, _now())
            try:
                Messages(tx).add(message=message, client_message_id=client_message_id)
            except DuplicateKey:
                return self._replay(tx, message, client_message_id), {}, None
            except MissingReference:
                if not Groups(tx).exists(group_id=group_id):
                    raise GroupNotFound(f"group_id: no group {group_id}") from None
                self._raise_unknown_users(tx, sending_user_id=sender_id)
                raise
            members = Members(tx).with_block_flags(group_id=group_id, sender_id=sender_id)
            if not any(user_id == sender_id for user_id, _ in members):
                raise NotAMember("only members of the group can send to it")
            recipients = [user_id for user_id, blocks_sender in members if user_id != sender_id and not blocks_sender]
            seqs = InboxCounters(tx).advance(user_ids=recipients) if recipients else {}
            if seqs:
                Inbox(tx).add(message_id=message.id, sent_at=message.sent_at, seqs=seqs)
            result = {
                "message_id": message.id,
                "sent_at": iso(message.sent_at),
                "recipients": len(recipients),
                "duplicate": False,
            }
            return result, seqs, message

        return self._deliver(self._db.run(work, write=True))

    def _deliver(self, sent: _Sent) -> Dict[str, Any]:
        """After the commit: write each new inbox entry through to the cache."""
        result, seqs, message = sent
        if self._cache is not None and message is not None and seqs:
            # Serialize the shared part once; only the seq differs per recipient.
            shared = _entry_json(_message_item(0, message))[len('{"seq":0,'):]
            self._cache.add({user_id: (seq, f'{{"seq":{seq},{shared}') for user_id, seq in seqs.items()})
        return result

    @staticmethod
    def _replay(tx: Tx, attempt: StoredMessage, client_message_id: Optional[str]) -> Dict[str, Any]:
        """The answer to a send whose idempotency key is already used."""
        original = Messages(tx).by_client_id(sender_id=attempt.sender_id, client_message_id=client_message_id or "")
        if original is None:  # the key's row vanished between the two statements
            raise IdempotencyConflict("client_message_id: the earlier send with this key is not readable")
        same = (
            original.body == attempt.body
            and original.recipient_id == attempt.recipient_id
            and original.group_id == attempt.group_id
        )
        if not same:
            raise IdempotencyConflict(
                "client_message_id: already used by this sender for a different message or recipient"
            )
        result: Dict[str, Any] = {"message_id": original.id, "sent_at": iso(original.sent_at)}
        if original.group_id is not None:
            result["recipients"] = Inbox(tx).deliveries(message_id=original.id)
        result["duplicate"] = True
        return result

    # ------------------------------------------------------------------ reading

    def read(
        self,
        *,
        caller: Optional[str],
        user_id: str,
        after: Optional[int],
        since: Optional[datetime],
        limit: int,
    ) -> Page:
        """A page of the user's inbox."""
        self._act_as(caller, "user_id", user_id)
        if (after is None) == (since is None):
            raise BadRequest("after", "give exactly one of after and min_timestamp")
        self._limit(self._limits.reads, user_id)
        ticket = None
        # Timestamp reads cannot be proven complete from a seq window: database.
        if self._cache is not None and after is not None:
            cached = self._cache.read(user_id=user_id, after=after, limit=limit)
            # A cursor past the window's newest seq may be a lost cache write: the database decides.
            if isinstance(cached, Hit) and after <= cached.newest:
                items = [json.loads(entry) for entry in cached.entries]
                return _page(items, after, cached.newest > after + limit, "hit")
            ticket = cached.ticket if isinstance(cached, Miss) else None

        def work(tx: Tx) -> Tuple[List[Dict[str, Any]], bool, Optional[int]]:
            inbox = Inbox(tx)
            if after is not None:
                entries = inbox.after(user_id=user_id, after=after, limit=limit + 1)
            else:
                entries = inbox.since(user_id=user_id, since=since, limit=limit + 1)
            items = [_message_item(e.seq, e.message) for e in entries[:limit]]
            has_more = len(entries) > limit
            if items:
                # A complete page reaches the user's newest entry.
                return items, has_more, None if has_more else items[-1]["seq"]
            last_seq = InboxCounters(tx).last_seq(user_id=user_id)
            if last_seq is None:
                raise UserNotFound(f"user_id: no user {user_id}")
            if after is not None and after > last_seq:
                raise CursorAhead(after=after, newest_seq=last_seq)
            return items, has_more, last_seq

        items, has_more, newest = self._db.run(work, write=False)
        if ticket is not None and newest is not None:
            self._cache.refill(
                user_id=user_id, ticket=ticket, newest=newest,
                entries=[(item["seq"], _entry_json(item)) for item in items],
            )
        path = "off" if self._cache is None else "miss"
        if after is None and not items:
            # An empty timestamp read hands back the newest seq, to switch to the cursor.
            return _page(items, newest, False, path)
        return _page(items, after, has_more, path)

    def health(self) -> Health:
        database = "ok" if self._db.ping() else "unavailable"
        cache = "off" if self._cache is None else "ok" if self._cache.ping() else "unavailable"
        return Health(database=database, cache=cache)


def _page(items: List[Dict[str, Any]], after: Optional[int], has_more: bool, cache: str) -> Page:
    return Page(messages=items, next_after=items[-1]["seq"] if items else after, has_more=has_more, cache=cache)
