"""Blocking: the blocked user's direct messages are refused and its group
messages skip the blocker; unblocking never redelivers."""
from __future__ import annotations

from typing import Optional

from ..db import DuplicateKey, MissingReference, Tx
from ..errors import BadRequest
from ..repositories import Blocks
from .deps import Deps, raise_unknown_users
from .results import BlockSet


class Blocking:
    def __init__(self, deps: Deps) -> None:
        self._deps = deps

    def set_block(self, *, caller: Optional[str], blocking_user_id: str, blocked_user_id: str, block: bool) -> BlockSet:
        self._deps.act_as(caller, "blocking_user_id", blocking_user_id)
        self._deps.limit(self._deps.limits.writes, blocking_user_id)
        if blocking_user_id == blocked_user_id:
            raise BadRequest("blocked_user_id", "a user cannot block themselves")
        users = {"blocking_user_id": blocking_user_id, "blocked_user_id": blocked_user_id}

        def work(tx: Tx) -> None:
            blocks = Blocks(tx)
            if block:
                try:
                    if not blocks.add(blocker_id=blocking_user_id, blocked_id=blocked_user_id,
                                      created_at=self._deps.now()):
                        raise_unknown_users(tx, blocked_user_id=blocked_user_id)
                except DuplicateKey:
                    pass  # already blocked: blocking is idempotent
                except MissingReference:
                    raise_unknown_users(tx, **users)
            elif blocks.remove(blocker_id=blocking_user_id, blocked_id=blocked_user_id) == 0:
                raise_unknown_users(tx, **users)

        self._deps.db.run(work, write=True)
        return BlockSet(blocking_user_id=blocking_user_id, blocked_user_id=blocked_user_id, blocked=block)
