"""Reading a user's stream: /sync, every event after a cursor, and
/read_messages, the original view of it (the messages the user received);
a page after a cursor comes from the cache when it provably holds it. A
/read_messages page since a time always comes from the database."""
from __future__ import annotations

import json
import time
from dataclasses import replace
from datetime import datetime
from typing import Any, Callable, Dict, List, Optional, Tuple, TypeVar

from .. import timebudget
from ..cache import Hit, Miss
from ..db import Tx
from ..errors import BadRequest, CursorAhead, UserNotFound
from ..repositories import Inbox, InboxCounters, Stream
from .deps import Deps
from .results import Events, Page, event_item, message_event, read_item, shown_to

P = TypeVar("P", Page, Events)

# A page's JSON body stays under this many bytes (at least one message per
# page): Lambda answers at most 6 MB, and the body travels inside the proxy
# response as an escaped string, which at worst doubles it. A page of
# 4,096-emoji messages is 49 KB a message as JSON, so about 21 of them.
MAX_PAGE_BYTES = 1024 * 1024
# An item's JSON is at most this much more than 12 bytes a character of text
# (an astral character escapes to two \uXXXX): the ids, time and keys.
_ITEM_OVERHEAD_BYTES = 400


class Reading:
    def __init__(self, deps: Deps) -> None:
        self._deps = deps

    def read(self, *, caller: Optional[str], user_id: str, after: Optional[int], since: Optional[datetime],
             limit: int, wait: int = 0) -> Page:
        """/read_messages: the messages the user received, from the stream;
        with `wait` (seconds, cursor reads only), a page with no message to
        show waits up to that long for one, then answers as a read would (its
        next_after past the events it does not show)."""
        deps = self._deps
        deps.act_as(caller, "user_id", user_id)
        if (after is None) == (since is None):
            raise BadRequest("after", "give exactly one of after and min_timestamp")
        if wait and since is not None:
            raise BadRequest("wait", "waits only with after (a cursor), not with min_timestamp")
        deps.limit(deps.limits.reads, user_id)
        if since is not None:
            return self._read_since(user_id, since, limit)
        cursor = after or 0

        def page() -> Page:
            events, has_more, path = self._read(user_id, cursor, limit)
            items, cut = _fit([read_item(e) for e in events if shown_to(e, user_id)], False)
            if cut:  # the page ends at its last item; the events after it come again
                return Page(items, items[-1]["seq"], True, path)
            return Page(items, _next_after(events, cursor), has_more, path)

        # Nothing to show and nothing more to read: wait (an answer with
        # has_more is at once: the client reads on from its next_after).
        return self._waiting(user_id, cursor, wait, page, lambda p: not p.messages and not p.has_more)

    def sync(self, *, caller: Optional[str], user_id: str, after: int, limit: int, wait: int = 0) -> Events:
        """/sync: every event of the user's stream after the cursor."""
        deps = self._deps
        deps.act_as(caller, "user_id", user_id)
        deps.limit(deps.limits.reads, user_id)

        def page() -> Events:
            events, has_more, path = self._read(user_id, after, limit)
            events, has_more = _fit(events, has_more)
            return Events(events, _next_after(events, after), has_more, path)

        return self._waiting(user_id, after, wait, page, lambda p: not p.events)

    def _waiting(self, user_id: str, after: int, wait: int, page: Callable[[], P],
                 empty: Callable[[P], bool]) -> P:
        """The page, at once or, with `wait`, once it is not empty (or the wait is over)."""
        deps = self._deps
        wait = min(wait, deps.long_poll_max_seconds)
        if not wait:
            return page()
        with deps.wait_slots.take(user_id, seconds=wait) as refused:
            if refused:
                return replace(page(), wait_refused=refused)
            # Listen before reading: an event committed after the read still wakes us.
            with deps.wakeups.listen(user_id, lambda: self._newest_seq(user_id)) as waiter:
                answer = page()
                until = time.monotonic() + min(wait, max(0.0, timebudget.left()))
                while empty(answer):
                    # Newer than what this answer has seen (a /read_messages page may have skipped events).
                    woken = waiter.wait(until=until, newer_than=max(after, answer.next_after))
                    answer = page()
                    if not woken:
                        break
                return answer

    def _newest_seq(self, user_id: str) -> Optional[int]:
        return self._deps.db.run(lambda tx: InboxCounters(tx).last_seq(user_id=user_id), write=False)

    def _read(self, user_id: str, after: int, limit: int) -> Tuple[List[Dict[str, Any]], bool, str]:
        """Up to `limit` events after the cursor, whether more follow, and
        the path: from the cache when it provably holds the page."""
        cache, ticket = self._deps.cache, None
        if cache is not None:
            cached = cache.read(user_id=user_id, after=after, limit=limit)
            # A cursor past the window's newest seq may be a lost cache write: the database decides.
            if isinstance(cached, Hit) and after <= cached.newest:
                return cached.items, cached.newest > after + limit, "hit"
            ticket = cached.ticket if isinstance(cached, Miss) else None

        def work(tx: Tx) -> Tuple[List[Dict[str, Any]], bool, Optional[int]]:
            rows = Stream(tx).after(user_id=user_id, after=after, limit=limit + 1)
            events, has_more = [event_item(row) for row in rows[:limit]], len(rows) > limit
            if events:  # a complete page reaches the user's newest entry
                return events, has_more, None if has_more else events[-1]["seq"]
            last_seq = _last_seq(tx, user_id)
            if after > last_seq:
                raise CursorAhead(after=after, newest_seq=last_seq)
            return events, has_more, last_seq

        events, has_more, newest = self._deps.db.run(work, write=False)
        if cache is not None and ticket is not None and newest is not None:
            cache.refill(user_id=user_id, ticket=ticket, newest=newest, items=events)
        return events, has_more, "off" if cache is None else "miss"

    def _read_since(self, user_id: str, since: datetime, limit: int) -> Page:
        """A page since a time: always the database (a seq window cannot prove
        such a page complete). Empty, it hands back the user's newest seq, to
        switch to the cursor."""

        def work(tx: Tx) -> Tuple[List[Dict[str, Any]], bool, int]:
            entries = Inbox(tx).received_since(user_id=user_id, since=since, limit=limit + 1)
            items = [read_item(message_event(e.seq, e.message)) for e in entries[:limit]]
            return items, len(entries) > limit, items[-1]["seq"] if items else _last_seq(tx, user_id)

        items, has_more, newest = self._deps.db.run(work, write=False)
        items, has_more = _fit(items, has_more)
        path = "off" if self._deps.cache is None else "miss"
        return Page(items, items[-1]["seq"] if items else newest, has_more, path)


def _last_seq(tx: Tx, user_id: str) -> int:
    last_seq = InboxCounters(tx).last_seq(user_id=user_id)
    if last_seq is None:
        raise UserNotFound(f"user_id: no user {user_id}")
    return last_seq


def _fit(items: List[Dict[str, Any]], has_more: bool) -> Tuple[List[Dict[str, Any]], bool]:
    """The longest head of `items` whose JSON fits MAX_PAGE_BYTES (at least
    one item); has_more when anything was cut. Serialized as the edge does
    (compact, ASCII escapes), so both read paths cut at the same item."""
    if sum(12 * len(i.get("text") or "") + _ITEM_OVERHEAD_BYTES for i in items) <= MAX_PAGE_BYTES:
        return items, has_more  # the usual page: far below the cap, nothing to measure
    total = len('{"messages":[],"next_after":9223372036854775807,"has_more":false}')
    for n, item in enumerate(items):
        total += len(json.dumps(item, separators=(",", ":"))) + 1
        if total > MAX_PAGE_BYTES and n > 0:
            return items[:n], True
    return items, has_more


def _next_after(items: List[Dict[str, Any]], after: int) -> int:
    return items[-1]["seq"] if items else after
