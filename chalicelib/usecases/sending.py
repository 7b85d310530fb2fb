"""Direct and group sends. A send is one transaction in named steps:

1. store: the message row, the next seq of each recipient's stream and of
   the sender's own, and the inbox rows, in one round trip
   (repositories.Deliveries);
2. when the idempotency key is already used, replay: answer what that key
   stored (a different text or recipient is a conflict);
3. when nothing could be stored, explain: the 404 or 403 that says why;

then, after the commit, hurry the news along (fanout.publish): the cache
windows, the long-polls and the live connections, the sender's other devices
included (again on a replay: the first attempt's commit may have landed
while its reply was lost)."""
from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, replace
from typing import Any, Dict, Optional, Sequence, Tuple

from ..db import DuplicateKey, MissingReference, Tx
from ..errors import AttachmentNotReady, BadRequest, Blocked, GroupNotFound, IdempotencyConflict, NotAMember
from ..repositories import Attachments, Deliveries, Groups, Inbox, Messages, StoredMessage, upload_key
from .attaching import ATTACHABLE, Attaching
from .deps import Deps, raise_unknown_users
from .fanout import publish
from .results import Sent, iso, message_event

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Delivery:
    """What a send's transaction hands to the after-commit step."""

    result: Sent
    seqs: Dict[str, int]  # each stream that holds the message (the sender's too) -> its seq
    message: StoredMessage  # as stored: for a replay, the original

    @classmethod
    def of(cls, message: StoredMessage, seqs: Dict[str, int], *, duplicate: bool) -> "Delivery":
        # Group sends say how many received it: every stream but the sender's.
        recipients = len(seqs) - (message.sender_id in seqs) if message.group_id is not None else None
        return cls(Sent(message.id, iso(message.sent_at), duplicate, recipients), seqs, message)


class Sending:
    def __init__(self, deps: Deps) -> None:
        self._deps = deps

    def send(
        self, *, caller: Optional[str], sender_id: str, recipient_id: str, text: Optional[str],
        client_message_id: Optional[str], attachment_ids: Sequence[str] = ()
    ) -> Sent:
        message = StoredMessage(str(uuid.uuid4()), sender_id, recipient_id, None, text or "", self._deps.now())
        return self._send(caller, message, client_message_id, attachment_ids)

    def send_group(
        self, *, caller: Optional[str], sender_id: str, group_id: str, text: Optional[str],
        client_message_id: Optional[str], attachment_ids: Sequence[str] = ()
    ) -> Sent:
        message = StoredMessage(str(uuid.uuid4()), sender_id, None, group_id, text or "", self._deps.now())
        return self._send(caller, message, client_message_id, attachment_ids)

    def _send(self, caller: Optional[str], message: StoredMessage, client_message_id: Optional[str],
              attachment_ids: Sequence[str]) -> Sent:
        deps = self._deps
        deps.act_as(caller, "sending_user_id", message.sender_id)
        if not message.body and not attachment_ids:
            raise BadRequest("message_text", "is required (it may be left out only with attachment_ids)")
        deps.limit(deps.limits.sends, message.sender_id)
        if attachment_ids:
            message = replace(message, attachments=self._attachments(message, client_message_id, attachment_ids))
        delivery = deps.db.run(lambda tx: _transaction(tx, message, client_message_id), write=True)
        self._after_commit(delivery)
        return delivery.result

    def _attachments(self, message: StoredMessage, client_message_id: Optional[str],
                     attachment_ids: Sequence[str]) -> Tuple[Dict[str, Any], ...]:
        """What the message will carry: checked against the store, unless this
        is the retry of a send that already attached them (the replay
        answers it)."""
        deps = self._deps
        if client_message_id is not None:
            earlier = deps.db.run(lambda tx: Messages(tx).by_client_id(
                sender_id=message.sender_id, client_message_id=client_message_id), write=False)
            if earlier is not None:
                return earlier.attachments if [a["attachment_id"] for a in earlier.attachments] == list(
                    attachment_ids) else tuple({"attachment_id": a} for a in attachment_ids)  # a conflict
        return Attaching(deps).ready(uploader_id=message.sender_id, attachment_ids=attachment_ids)

    def _after_commit(self, delivery: Delivery) -> None:
        message = delivery.message
        # The recipients first; the uploads' clean-up (an S3 request) after.
        publish(self._deps, message_event(0, delivery.message), delivery.seqs, version=delivery.message.version)
        if message.attachments and not delivery.result.duplicate and self._deps.storage is not None:
            try:  # the uploads were copied where the message's files are kept; a day's lifecycle rule backs this up
                self._deps.storage.delete(keys=[upload_key(message.sender_id, a["attachment_id"])
                                                for a in message.attachments])
            except Exception as error:  # noqa: BLE001 - the message is sent; the uploads are only leftovers
                log.warning("attachments: deleting %d uploads failed (%s)", len(message.attachments),
                            type(error).__name__)


def _transaction(tx: Tx, message: StoredMessage, client_message_id: Optional[str]) -> Delivery:
    try:
        seqs = _store(tx, message, client_message_id)
    except DuplicateKey:
        return _replay(tx, message, client_message_id)
    except MissingReference:
        _explain_refusal(tx, message)
        raise
    if seqs is not None and message.attachments:
        ids = [a["attachment_id"] for a in message.attachments]
        claimed = Attachments(tx).claim(attachment_ids=ids, uploader_id=message.sender_id, message_id=message.id,
                                        asked_after=message.sent_at - ATTACHABLE)
        if claimed != len(ids):
            raise AttachmentNotReady("attachment_ids: attached to another message meanwhile, or asked for more"
                                     " than a day ago")
    if seqs is None:
        if client_message_id is not None and Messages(tx).by_client_id(
                sender_id=message.sender_id, client_message_id=client_message_id):
            return _replay(tx, message, client_message_id)  # sent while a member
        _explain_refusal(tx, message)
        raise AssertionError("unreachable: a refusal always has a reason")
    return Delivery.of(message, seqs, duplicate=False)


def _store(tx: Tx, message: StoredMessage, client_message_id: Optional[str]) -> Optional[Dict[str, int]]:
    """Each recipient's seq, or None when no message row was stored (a group
    send by a non-member). Blocked: the direct recipient blocks the sender
    (UserNotFound when the recipient deleted the account, which took its
    counter)."""
    deliveries = Deliveries(tx)
    if message.group_id is not None:
        return deliveries.group(message=message, client_message_id=client_message_id)
    seqs = deliveries.direct(message=message, client_message_id=client_message_id)
    if seqs is None or (message.recipient_id or "") not in seqs:
        raise_unknown_users(tx, receiving_user_id=message.recipient_id or "")
        raise Blocked("the receiving user has blocked the sending user")
    return seqs


def _explain_refusal(tx: Tx, message: StoredMessage) -> None:
    """Raise why the message could not be stored: an unknown user or group
    (404), or a group send by a non-member (403)."""
    if message.group_id is None:
        raise_unknown_users(tx, receiving_user_id=message.recipient_id or "", sending_user_id=message.sender_id)
        return
    if not Groups(tx).exists(group_id=message.group_id):
        raise GroupNotFound(f"group_id: no group {message.group_id}")
    raise_unknown_users(tx, sending_user_id=message.sender_id)
    raise NotAMember("only members of the group can send to it")


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
        (original.body == attempt.body or original.edited_at is not None or original.deleted)  # changed since
        and [a["attachment_id"] for a in original.attachments] == [a["attachment_id"] for a in attempt.attachments]
        and original.recipient_id == attempt.recipient_id
        and original.group_id == attempt.group_id
    )
    if not same:
        raise IdempotencyConflict("client_message_id: already used by this sender for a different message or recipient")
    return Delivery.of(original, Inbox(tx).seqs(message_id=original.id), duplicate=True)
