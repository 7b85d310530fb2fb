"""What a user does to messages already sent: edit and delete (the sender
only), and mark a conversation read. Each is one transaction that changes the
message or the read marker and adds an event to every stream concerned, then
publishes it (fanout.publish) like a send."""
from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Dict, Optional

from ..cache import Delivery
from ..db import Tx
from ..errors import BadRequest, EditWindowClosed, Forbidden, MessageDeleted, MessageNotFound
from ..repositories import Change, Deliveries, Inbox, StoredMessage
from .attaching import Attaching
from .deps import Deps
from .fanout import publish, publish_all
from .results import Edited, MarkedRead, delete_event, edit_event, iso, read_event, receipt_event
from .results import MessageDeleted as Deleted


class Conversing:
    def __init__(self, deps: Deps) -> None:
        self._deps = deps

    def edit(self, *, caller: Optional[str], user_id: str, message_id: str, text: str) -> Edited:
        deps = self._deps
        deps.act_as(caller, "user_id", user_id)
        deps.limit(deps.limits.sends, user_id)
        at = deps.now()

        def work(tx: Tx) -> Change:
            change = Deliveries(tx).edit(message_id=message_id, sender_id=user_id, body=text, at=at,
                                         sent_after=at - timedelta(hours=deps.edit_window_hours), marker=_marker())
            if not change.changed:
                message = _own(tx, user_id, message_id, change.message)
                if message.deleted:
                    raise MessageDeleted(f"message_id: {message_id} was deleted")
                raise EditWindowClosed(f"message_id: messages can be edited for {deps.edit_window_hours} hours"
                                       " after they are sent")
            return change

        change = deps.db.run(work, write=True)
        assert change.message is not None  # changed
        publish(deps, edit_event(0, change.message), change.seqs, change.stale, change.message.version)
        return Edited(message_id, iso(at))

    def delete(self, *, caller: Optional[str], user_id: str, message_id: str) -> Deleted:
        """Idempotent: deleting a deleted message answers the same and changes nothing."""
        deps = self._deps
        deps.act_as(caller, "user_id", user_id)
        deps.limit(deps.limits.sends, user_id)

        def work(tx: Tx) -> Change:
            change = Deliveries(tx).erase(message_id=message_id, sender_id=user_id, at=deps.now(), marker=_marker())
            if not change.changed:
                _own(tx, user_id, message_id, change.message)  # already deleted, or not the user's to delete
            return change

        change = deps.db.run(work, write=True)
        if change.changed and change.message is not None:
            publish(deps, delete_event(0, change.message), change.seqs, change.stale, change.message.version)
            Attaching(deps).forget(change.files)  # the files go with the message
        return Deleted(message_id, True)

    def mark_read(self, *, caller: Optional[str], user_id: str, with_user_id: Optional[str],
                  group_id: Optional[str], message_id: str) -> MarkedRead:
        """Read up to and including the message; a marker never moves back.
        A `read` event to the reader's devices and, in a direct conversation,
        a `receipt` to the other person unless the reader turned receipts off."""
        deps = self._deps
        deps.act_as(caller, "user_id", user_id)
        if (with_user_id is None) == (group_id is None):
            raise BadRequest("with_user_id", "give exactly one of with_user_id and group_id")
        peer = with_user_id or group_id or ""
        deps.limit(deps.limits.writes, user_id)
        receipt_to = with_user_id if with_user_id not in (None, user_id) else None
        at = deps.now()

        def work(tx: Tx) -> Dict[str, int]:
            seqs = Deliveries(tx).read(reader_id=user_id, peer_id=peer, message_id=message_id,
                                       receipt_to=receipt_to, marker=_marker(), at=at)
            if seqs is None:
                raise MessageNotFound(f"message_id: no message {message_id} in this conversation")
            return seqs

        seqs = deps.db.run(work, write=True)
        read = read_event(0, peer_id=peer, is_group=group_id is not None, message_id=message_id)
        receipt = receipt_event(0, reader_id=user_id, message_id=message_id)
        publish_all(deps, [Delivery(read, {u: s for u, s in seqs.items() if u == user_id}, {}),
                           Delivery(receipt, {u: s for u, s in seqs.items() if u != user_id}, {})])
        return MarkedRead(message_id)


def _marker() -> str:
    """Marks the counters one write advanced (inbox_counters.last_message_id)."""
    return str(uuid.uuid4())


def _own(tx: Tx, user_id: str, message_id: str, message: Optional[StoredMessage]) -> StoredMessage:
    """The message if it is the user's own; else 404 (the user does not hold
    it: its existence is not revealed) or 403 (someone else's)."""
    if message is None or (message.sender_id != user_id
                           and not Inbox(tx).holds(user_id=user_id, message_id=message_id)):
        raise MessageNotFound(f"message_id: no message {message_id}")
    if message.sender_id != user_id:
        raise Forbidden("only the sender can edit or delete a message")
    return message



