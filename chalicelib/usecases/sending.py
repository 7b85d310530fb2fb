"""Direct and group sends. Both store the message once, deliver it into each
recipient's inbox with the recipient's next seq in the same transaction,
answer a retry with its idempotency key from what was stored, and write the
new entries through to the cache after the commit."""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Callable, Dict, Optional

from ..db import DuplicateKey, MissingReference, Tx
from ..errors import Blocked, GroupNotFound, IdempotencyConflict, NotAMember
from ..repositories import Groups, Inbox, InboxCounters, Members, Messages, StoredMessage
from .deps import Deps, raise_unknown_users
from .results import Sent, iso, message_item


@dataclass(frozen=True)
class Delivery:
    """What a send's transaction hands to the after-commit step."""

    result: Sent
    seqs: Dict[str, int]  # recipient -> its seq of the message; empty for a replay
    message: Optional[StoredMessage]  # None for a replay


class Sending:
    def __init__(self, deps: Deps) -> None:
        self._deps = deps

    def send(
        self, *, caller: Optional[str], sender_id: str, recipient_id: str, text: str, client_message_id: Optional[str]
    ) -> Sent:
        def unknown(tx: Tx) -> None:
            raise_unknown_users(tx, receiving_user_id=recipient_id, sending_user_id=sender_id)

        def fan_out(tx: Tx, message: StoredMessage) -> Dict[str, int]:
            seq = InboxCounters(tx).advance_unless_blocked(user_id=recipient_id, sender_id=sender_id)
            if seq is None:
                raise Blocked("the receiving user has blocked the sending user")
            return {recipient_id: seq}

        return self._send(caller, sender_id, text, client_message_id, recipient_id=recipient_id, group_id=None,
                          unknown=unknown, fan_out=fan_out)

    def send_group(
        self, *, caller: Optional[str], sender_id: str, group_id: str, text: str, client_message_id: Optional[str]
    ) -> Sent:
        def unknown(tx: Tx) -> None:
            if not Groups(tx).exists(group_id=group_id):
                raise GroupNotFound(f"group_id: no group {group_id}")
            raise_unknown_users(tx, sending_user_id=sender_id)

        def fan_out(tx: Tx, message: StoredMessage) -> Dict[str, int]:
            members = Members(tx).with_block_flags(group_id=group_id, sender_id=sender_id)
            if not any(user_id == sender_id for user_id, _ in members):
                raise NotAMember("only members of the group can send to it")
            recipients = [user_id for user_id, blocks_sender in members if user_id != sender_id and not blocks_sender]
            return InboxCounters(tx).advance(user_ids=recipients) if recipients else {}

        return self._send(caller, sender_id, text, client_message_id, recipient_id=None, group_id=group_id,
                          unknown=unknown, fan_out=fan_out)

    def _send(
        self,
        caller: Optional[str],
        sender_id: str,
        text: str,
        client_message_id: Optional[str],
        *,
        recipient_id: Optional[str],
        group_id: Optional[str],
        unknown: Callable[[Tx], None],
        fan_out: Callable[[Tx, StoredMessage], Dict[str, int]],
    ) -> Sent:
        """The part both sends share. `unknown` raises the right 404 when the
        message row's foreign keys fail; `fan_out` takes each recipient's seq."""
        deps = self._deps
        deps.act_as(caller, "sending_user_id", sender_id)
        deps.limit(deps.limits.sends, sender_id)

        def work(tx: Tx) -> Delivery:
            message = StoredMessage(str(uuid.uuid4()), sender_id, recipient_id, group_id, text, deps.now())
            try:
                Messages(tx).add(message=message, client_message_id=client_message_id)
            except DuplicateKey:
                return Delivery(_replay(tx, message, client_message_id), {}, None)
            except MissingReference:
                unknown(tx)
                raise
            seqs = fan_out(tx, message)
            if seqs:
                Inbox(tx).add(message_id=message.id, sent_at=message.sent_at, seqs=seqs)
            recipients = len(seqs) if group_id is not None else None
            return Delivery(Sent(message.id, iso(message.sent_at), False, recipients), seqs, message)

        delivery = deps.db.run(work, write=True)
        self._after_commit(delivery)
        return delivery.result

    def _after_commit(self, delivery: Delivery) -> None:
        """Hurry the news along (the cursor stays the truth): wake this
        process's long-polls; with Redis, in one round trip, write each entry
        through to the cache, wake every container's long-polls and learn who
        is connected; then push to those connections."""
        deps, seqs = self._deps, delivery.seqs
        if delivery.message is None or not seqs:
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


def _replay(tx: Tx, attempt: StoredMessage, client_message_id: Optional[str]) -> Sent:
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
        raise IdempotencyConflict("client_message_id: already used by this sender for a different message or recipient")
    recipients = Inbox(tx).deliveries(message_id=original.id) if original.group_id is not None else None
    return Sent(original.id, iso(original.sent_at), True, recipients)
