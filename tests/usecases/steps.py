"""The use cases' public calls as the tier's tests say them: each user acts
as itself (caller = its own id), as a token's user would."""
from __future__ import annotations

from typing import List, Optional

from chalicelib.usecases import UseCases
from chalicelib.usecases.results import Registered

UNKNOWN = "00000000-0000-4000-8000-000000000000"


def user(uc: UseCases, name: str) -> Registered:
    return uc.accounts.register(user_name=name, source_ip="127.0.0.1")


def group_of(uc: UseCases, *members: Registered, name: str = "g") -> str:
    """A new group that `members` have joined."""
    group = uc.membership.create_group(caller=None, group_name=name).group_id
    for member in members:
        join(uc, member, group)
    return group


def send(uc: UseCases, sender: Registered, recipient: Registered, text: str = "hi", key: Optional[str] = None):
    return uc.sending.send(caller=sender.user_id, sender_id=sender.user_id, recipient_id=recipient.user_id,
                           text=text, client_message_id=key)


def send_group(uc: UseCases, sender: Registered, group_id: str, text: str = "hello", key: Optional[str] = None):
    return uc.sending.send_group(caller=sender.user_id, sender_id=sender.user_id, group_id=group_id, text=text,
                                 client_message_id=key)


def join(uc: UseCases, member: Registered, group_id: str, to_be_added: bool = True):
    return uc.membership.set_membership(caller=member.user_id, user_id=member.user_id, group_id=group_id,
                                        member=to_be_added)


def block(uc: UseCases, blocker: Registered, blocked: Registered, to_block: bool = True):
    return uc.blocking.set_block(caller=blocker.user_id, blocking_user_id=blocker.user_id,
                                 blocked_user_id=blocked.user_id, block=to_block)


def inbox(uc: UseCases, reader: Registered, after: int = 0, limit: int = 100) -> List[dict]:
    return uc.reading.read(caller=reader.user_id, user_id=reader.user_id, after=after, since=None,
                           limit=limit).messages


def texts(uc: UseCases, reader: Registered) -> List[str]:
    return [m["text"] for m in inbox(uc, reader)]
