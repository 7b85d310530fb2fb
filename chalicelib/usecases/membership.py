"""Groups: anyone creates one; users add and remove only themselves, up to
the member cap, idempotently. A join or a leave is a `member` event in the
stream of the user and of every member."""
from __future__ import annotations

import uuid
from typing import Optional

from ..db import DuplicateKey, MissingReference, Tx
from ..errors import GroupFull, GroupNotFound, UserNotFound
from ..repositories import Deliveries, Groups, MemberChange, Members
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
        at, marker = deps.now(), str(uuid.uuid4())

        def join(tx: Tx) -> Optional[MemberChange]:
            try:
                done = Deliveries(tx).join(group_id=group_id, user_id=user_id, capacity=capacity, marker=marker, at=at)
            except DuplicateKey:
                Groups(tx).free_seat(group_id=group_id)  # already a member: joining is idempotent
                return None
            except MissingReference:
                raise UserNotFound(f"user_id: no user {user_id}") from None
            if done is None:  # no seat taken: why, in the round trips only this case pays
                if not Groups(tx).exists(group_id=group_id):
                    raise GroupNotFound(f"group_id: no group {group_id}")
                if not tx.fetch(Members.is_member(group_id=group_id, user_id=user_id))[0]:
                    raise GroupFull(f"group {group_id} has {capacity} members, the maximum")
            return done

        def leave(tx: Tx) -> Optional[MemberChange]:
            done = Deliveries(tx).leave(group_id=group_id, user_id=user_id, marker=marker, at=at)
            if done is None:
                if not Groups(tx).exists(group_id=group_id):
                    raise GroupNotFound(f"group_id: no group {group_id}")
                raise_unknown_users(tx, user_id=user_id)
            return done

        done = deps.db.run(join if member else leave, write=True)
        if done is not None:
            publish(deps, member_event(0, group_id=group_id, group_name=done.group_name, user_id=user_id,
                                       member=member), done.seqs)
        return MembershipSet(group_id=group_id, user_id=user_id, member=member)
