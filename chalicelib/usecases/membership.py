"""Groups: anyone creates one; users add and remove only themselves, up to
the member cap, idempotently. A join or a leave is a `member` event in the
stream of the user and of every member."""
from __future__ import annotations

import uuid
from typing import Dict, Optional

from ..db import DuplicateKey, MissingReference, Tx
from ..errors import GroupFull, GroupNotFound, UserNotFound
from ..repositories import Deliveries, Groups, Members
from .deps import Deps, raise_unknown_users
from .fanout import publish
from .results import GroupCreated, MembershipSet, member_event


class Membership:
    def __init__(self, deps: Deps) -> None:
        self._deps = deps

    def create_group(self, *, caller: Optional[str], group_name: str) -> GroupCreated:
        self._deps.limit(self._deps.limits.writes, caller or "anonymous")  # anonymous: AUTH_MODE=none
        group_id = str(uuid.uuid4())
        self._deps.db.run(lambda tx: Groups(tx).add(group_id=group_id, name=group_name, created_at=self._deps.now()),
                          write=True)
        return GroupCreated(group_id=group_id, group_name=group_name)

    def set_membership(self, *, caller: Optional[str], user_id: str, group_id: str, member: bool) -> MembershipSet:
        deps = self._deps
        deps.act_as(caller, "user_id", user_id)
        deps.limit(deps.limits.writes, user_id)
        capacity = deps.max_group_members
        at = deps.now()
        name: Dict[str, str] = {}

        def event(tx: Tx, kind: str) -> Dict[str, int]:
            """The join or leave, to every member (the user included)."""
            [named] = tx.fetch(Groups.named(group_ids=[group_id]))
            name.update((gid, n) for gid, (n, _) in named.items())
            return Deliveries(tx).to_members(group_id=group_id, kind=kind, user_id=user_id, marker=str(uuid.uuid4()),
                                             at=at)

        def join(tx: Tx) -> Dict[str, int]:
            groups, members = Groups(tx), Members(tx)
            if not groups.take_seat(group_id=group_id, capacity=capacity):
                if not groups.exists(group_id=group_id):
                    raise GroupNotFound(f"group_id: no group {group_id}")
                if tx.fetch(Members.is_member(group_id=group_id, user_id=user_id))[0]:
                    return {}
                raise GroupFull(f"group {group_id} has {capacity} members, the maximum")
            try:
                members.add(group_id=group_id, user_id=user_id, joined_at=at)
            except DuplicateKey:
                groups.free_seat(group_id=group_id)  # already a member: joining is idempotent
                return {}
            except MissingReference:
                raise UserNotFound(f"user_id: no user {user_id}") from None
            seqs = event(tx, "join")
            members.set_joined_seq(group_id=group_id, user_id=user_id, seq=seqs.get(user_id, 0))
            return seqs

        def leave(tx: Tx) -> Dict[str, int]:
            if Groups(tx).free_seat_of(group_id=group_id, user_id=user_id):
                seqs = event(tx, "leave")  # while the user is still a member: the user's devices hear it too
                Members(tx).remove(group_id=group_id, user_id=user_id)
                return seqs
            if not Groups(tx).exists(group_id=group_id):
                raise GroupNotFound(f"group_id: no group {group_id}")
            raise_unknown_users(tx, user_id=user_id)
            return {}

        seqs = deps.db.run(join if member else leave, write=True)
        publish(deps, member_event(0, group_id=group_id, group_name=name.get(group_id), user_id=user_id,
                                   member=member), seqs)
        return MembershipSet(group_id=group_id, user_id=user_id, member=member)
