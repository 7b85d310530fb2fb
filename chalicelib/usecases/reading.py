"""Reading a user's inbox: a page after a cursor (from the cache when it
provably holds the page) or since a time (always the database)."""
from __future__ import annotations

from datetime import datetime
from typing import Any, Dict, List, Optional, Tuple

from ..cache import Hit, Miss
from ..db import Tx
from ..errors import BadRequest, CursorAhead, UserNotFound
from ..repositories import Inbox, InboxCounters
from .deps import Deps
from .results import Page, message_item


class Reading:
    def __init__(self, deps: Deps) -> None:
        self._deps = deps

    def read(self, *, caller: Optional[str], user_id: str, after: Optional[int], since: Optional[datetime],
             limit: int) -> Page:
        deps = self._deps
        deps.act_as(caller, "user_id", user_id)
        if (after is None) == (since is None):
            raise BadRequest("after", "give exactly one of after and min_timestamp")
        deps.limit(deps.limits.reads, user_id)
        cache, ticket = deps.cache, None
        # Timestamp reads cannot be proven complete from a seq window: database.
        if cache is not None and after is not None:
            cached = cache.read(user_id=user_id, after=after, limit=limit)
            # A cursor past the window's newest seq may be a lost cache write: the database decides.
            if isinstance(cached, Hit) and after <= cached.newest:
                return Page(cached.items, _next_after(cached.items, after), cached.newest > after + limit, "hit")
            ticket = cached.ticket if isinstance(cached, Miss) else None

        def work(tx: Tx) -> Tuple[List[Dict[str, Any]], bool, Optional[int]]:
            inbox = Inbox(tx)
            if after is not None:
                entries = inbox.after(user_id=user_id, after=after, limit=limit + 1)
            else:
                entries = inbox.since(user_id=user_id, since=since, limit=limit + 1)
            items = [message_item(e.seq, e.message) for e in entries[:limit]]
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

        items, has_more, newest = deps.db.run(work, write=False)
        if ticket is not None and newest is not None:
            cache.refill(user_id=user_id, ticket=ticket, newest=newest, items=items)
        path = "off" if cache is None else "miss"
        if after is None and not items:
            # An empty timestamp read hands back the newest seq, to switch to the cursor.
            return Page(items, newest, False, path)
        return Page(items, _next_after(items, after), has_more, path)


def _next_after(items: List[Dict[str, Any]], after: Optional[int]) -> Optional[int]:
    return items[-1]["seq"] if items else after
