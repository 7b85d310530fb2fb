"""The stream's use cases as the tier's tests say them (each user acts as
itself, as a token's user would), and what a test reads back: a user's
whole stream, one message's row as stored."""
from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any, Dict, List, Optional

from chalicelib.auth import Identity
from chalicelib.usecases import UseCases
from chalicelib.usecases.results import Registered


def at(deps, moment: datetime, **changes: Any) -> UseCases:
    """The use cases over the same database, with the clock at `moment`."""
    return UseCases(dataclasses.replace(deps, now=lambda: moment, **changes))


def me(user: Registered) -> Identity:
    return Identity(user.user_id, user.session_id)


def stream(uc: UseCases, reader: Registered, after: int = 0, limit: int = 1000) -> List[Dict[str, Any]]:
    """Every event of the reader's stream after `after`, page by page."""
    events: List[Dict[str, Any]] = []
    while True:
        page = uc.reading.sync(caller=reader.user_id, user_id=reader.user_id, after=after, limit=limit)
        events += page.events
        assert page.next_after == (page.events[-1]["seq"] if page.events else after)
        after = page.next_after
        if not page.has_more:
            return events


def types(events: List[Dict[str, Any]]) -> List[str]:
    return [e["type"] for e in events]


def newest_seq(uc: UseCases, reader: Registered) -> int:
    events = stream(uc, reader)
    return events[-1]["seq"] if events else 0


def edit(uc: UseCases, who: Registered, message_id: str, text: str):
    return uc.conversing.edit(caller=who.user_id, user_id=who.user_id, message_id=message_id, text=text)


def delete(uc: UseCases, who: Registered, message_id: str):
    return uc.conversing.delete(caller=who.user_id, user_id=who.user_id, message_id=message_id)


def mark_read(uc: UseCases, who: Registered, message_id: str, *, with_user: Optional[Registered] = None,
              group_id: Optional[str] = None):
    return uc.conversing.mark_read(caller=who.user_id, user_id=who.user_id,
                                   with_user_id=with_user.user_id if with_user else None, group_id=group_id,
                                   message_id=message_id)


def conversations(uc: UseCases, who: Registered, limit: int = 50, before: Optional[int] = None):
    return uc.browsing.conversations(caller=who.user_id, user_id=who.user_id, limit=limit, before=before)


def history(uc: UseCases, who: Registered, *, with_user: Optional[Registered] = None, group_id: Optional[str] = None,
            before_seq: Optional[int] = None, limit: int = 50):
    return uc.browsing.history(caller=who.user_id, user_id=who.user_id,
                               with_user_id=with_user.user_id if with_user else None, group_id=group_id,
                               before_seq=before_seq, limit=limit)


def group_info(uc: UseCases, who: Registered, group_id: str, after_user_id: Optional[str] = None, limit: int = 100):
    return uc.browsing.group_info(caller=who.user_id, user_id=who.user_id, group_id=group_id,
                                  after_user_id=after_user_id, limit=limit)


def stored_message(deps, message_id: str) -> Optional[tuple]:
    """(body, edited_at is set, deleted_at is set) of the messages row, as the database holds it."""
    row = deps.db.run(lambda tx: tx.one("SELECT body, edited_at, deleted_at FROM messages WHERE id = %s",
                                        (message_id,)), write=False)
    return None if row is None else (row[0], row[1] is not None, row[2] is not None)


def count(deps, sql: str, params: tuple = ()) -> int:
    return int(deps.db.run(lambda tx: tx.one(sql, params), write=False)[0])
