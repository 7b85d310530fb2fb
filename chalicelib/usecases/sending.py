"""Direct and group sends. Both store the message once, deliver it into each
recipient's inbox with the recipient's next seq in the same transaction,
answer a retry with its idempotency key from what was stored, and write the
new entries through to the cache after the commit (again on a retry: the
first attempt's commit may have landed while its reply was lost)."""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Callable, Dict, Optional

from ..db import DuplicateKey, MissingReference, Tx
from ..errors import Blocked, GroupNotFound, IdempotencyConflict, NotAMember
from ..repositories import Groups, Inbox, InboxCounters, Messages, StoredMessage
from .deps import Deps, raise_unknown_users
from .results import Sent, iso, message_item


@dataclass(frozen=True)
class Delivery:
    """What a send's transaction hands to the after-commit step."""

    result: Sent
    seqs: Dict[str, int]  # recipient -> its seq of the message
    message: StoredMessage  # as stored: for a replay, the original

    @classmethod
    def of(cls, message: StoredMessage, seqs: Dict[str, int], *, duplicate: bool) -> "Delivery":
        recipients = len(seqs) if message.group_id is not None else None  # group sends say how many
        return cls(Sent(message.id, iso(message.sent_at), duplicate, recipients), seqs, message)


class Sending:
    def __init__(self, deps: Deps) -> None:
        self._deps = deps

    def send(
        self, *, caller: Optional[str], sender_id: str, recipient_id: str, text: str, client_message_id: Optional[str]
    ) -> Sent:
        def deliver(tx: Tx, message: StoredMessage) -> Dict[str, int]:
            counters = InboxCounters(tx)
            _, advanced, _ = tx.batch([
                Messages(tx).add(message=message, client_message_id=client_message_id),
                counters.advance_unless_blocked(user_id=recipient_id, sender_id=sender_id, message_id=message.id),
                Inbox(tx).deliver(message_id=message.id, sent_at=message.sent_at, user_id=recipient_id),
            ])
            seq = counters.seq_taken(advanced)
            if seq is None:
                raise Blocked("the receiving user has blocked the sending user")
            return {recipient_id: seq}

        def unknown(tx: Tx) -> None:
            raise_unknown_users(tx, receiving_user_id=recipient_id, sending_user_id=sender_id)

        return self._send(caller, StoredMessage(str(uuid.uuid4()), sender_id, recipient_id, None, text,
                                                self._deps.now()), client_message_id, deliver, unknown)

    def send_group(
        self, *, caller: Optional[str], sender_id: str, group_id: str, text: str, client_message_id: Optional[str]
    ) -> Sent:
        def deliver(tx: Tx, message: StoredMessage) -> Optional[Dict[str, int]]:
            """None when no message row was stored (the sender is no member)."""
            counters = InboxCounters(tx)
            stored, _, _, seqs = tx.batch([
                Messages(tx).add_if_member(message=message, client_message_id=client_message_id),
                counters.advance_members(group_id=group_id, sender_id=sender_id, message_id=message.id),
                Inbox(tx).deliver(message_id=message.id, sent_at=message.sent_at, group_id=group_id),
                counters.advanced_by(group_id=group_id, message_id=message.id),
            ])
            return counters.seqs_of(seqs) if stored.rowcount == 1 else None

        def unknown(tx: Tx) -> None:
            if not Groups(tx).exists(group_id=group_id):
                raise GroupNotFound(f"group_id: no group {group_id}") from None
            raise_unknown_users(tx, sending_user_id=sender_id)
            raise NotAMember("only members of the group can send to it")

        return self._send(caller, StoredMessage(str(uuid.uuid4()), sender_id, None, group_id, text, self._deps.now()),
                          client_message_id, deliver, unknown)

    def _send(
        self,
        caller: Optional[str],
        message: StoredMessage,
        client_message_id: Optional[str],
        deliver: Callable[[Tx, StoredMessage], Optional[Dict[str, int]]],
        unknown: Callable[[Tx], None],
    ) -> Sent:
        """The part both sends share: one transaction whose statements travel
        in one batch (`deliver`: the message row, each recipient's seq, the
        inbox rows) and the COMMIT, then the after-commit step. A used
        idempotency key answers what it stored; `unknown` raises the right
        404 or 403 when the message row could not be stored."""
        deps = self._deps
        deps.act_as(caller, "sending_user_id", message.sender_id)
        deps.limit(deps.limits.sends, message.sender_id)

        def work(tx: Tx) -> Delivery:
            try:
                seqs = deliver(tx, message)
            except DuplicateKey:
                return _replay(tx, message, client_message_id)
            except MissingReference:
                unknown(tx)
                raise
            if seqs is None:
                if client_message_id is not None and Messages(tx).by_client_id(
                        sender_id=message.sender_id, client_message_id=client_message_id):
                    return _replay(tx, message, client_message_id)  # sent while a member
                unknown(tx)
            return Delivery.of(message, seqs, duplicate=False)

        delivery = deps.db.run(work, write=True)
        self._after_commit(delivery)
        return delivery.result

    def _after_commit(self, delivery: Delivery) -> None:
        """Hurry the news along (the cursor stays the truth): wake this
        process's long-polls; with Redis, in one round trip, write each entry
        through to the cache, wake every container's long-polls and learn who
        is connected; then push to those connections. All of it may run twice
        for one message (a replay repeats it): a window keeps one entry per
        seq, and clients drop what their cursor has passed."""
        deps, seqs = self._deps, delivery.seqs
        if not seqs:
            return
        deps.wakeups.notify(seqs)
        item = message_item(0, delivery.message)
        if deps.cache is not None:
            live = deps.cache.deliver(item, seqs)  # None: Redis is down, so no push either
        else:
            live = deps.connections.of(seqs) if deps.pusher is not None else None
        if live and deps.pusher is not None:
            gone = deps.pusher.push(item, [(u, c, seqs[u]) for u, ids in live.items() for c in ids])
            deps.connections.forget(gone)


def _replay(tx: Tx, attempt: StoredMessage, client_message_id: Optional[str]) -> Delivery:
    """The answer to a send whose idempotency key is already used, with what
    the after-commit step needs to finish what the earlier attempt may not
    have: its commit can land with the reply lost (the attempt answered 503),
    and then only this retry can bring the news to the cache and the
    recipients' connections."""
    original = Messages(tx).by_client_id(sender_id=attempt.sender_id, client_message_id=client_message_id or "")
    if original is None:  # the key's row vanished between the two statements
        raise IdempotencyConflict("client_message_id: the earlier send with this key is not readable")
    same = (
        original.body == attempt.body
        and original.recipient_id == attempt.recipient_id
        and original.group_id == attempt.group_id
    )
    if not same:
        raise IdempotencyConflict("client_message_id: already used by this sender for a different message or recipient")
    return Delivery.of(original, Inbox(tx).seqs(message_id=original.id), duplicate=True)
