"""Retention: messages older than RETENTION_DAYS go, in bounded batches.

Each batch is two short transactions of its own: up to BATCH inbox rows of
the oldest messages, then those of their messages that no inbox row
references any more (a group message's rows may take several batches; its
message row goes with the last). A batch locks only old rows that no send touches, so a
purge never holds up a send for longer than one batch. Seqs are never
renumbered: a cursor behind the horizon reads what is left.

The cache stays exact: the affected users' windows are dropped before and
after each batch (a refill that read the database before the delete lands
on no window, since its ticket went with it), and when Redis cannot be
reached the purge stops rather than leave a window holding rows the
database no longer has.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import List, Optional, Tuple

from .. import timebudget
from ..repositories import Inbox, Messages
from .deps import Deps
from .results import Result

BATCH = 1000
BATCH_SECONDS = 2.0  # what one batch may take at most: the next starts only with this much left


@dataclass(frozen=True)
class Purged(Result):
    inbox_rows: int
    messages: int
    batches: int
    finished: bool  # False: stopped by its time budget (or Redis), the next run goes on
    stopped_because: Optional[str] = None


class Retention:
    def __init__(self, deps: Deps) -> None:
        self._deps = deps

    def purge(self, *, batch: int = BATCH) -> Purged:
        deps = self._deps
        if deps.retention_days is None:
            return Purged(0, 0, 0, True, "RETENTION_DAYS is not set: everything is kept")
        horizon = deps.now() - timedelta(days=deps.retention_days)
        rows = messages = batches = 0
        while True:
            if timebudget.left() < BATCH_SECONDS:
                return Purged(rows, messages, batches, False, "time budget spent")
            victims = deps.db.run(lambda tx: Messages(tx).oldest_deliveries(before=horizon, limit=batch), write=False)
            if not victims:
                break
            users = sorted({user_id for user_id, _, _ in victims})
            if not self._forget(users):
                return Purged(rows, messages, batches, False, "the cache could not be reached")

            removed, gone = self._delete(victims, full=len(victims) == batch)
            self._forget(users)  # a refill that read before the delete may have landed meanwhile
            rows, messages, batches = rows + removed, messages + gone, batches + 1
        while True:  # messages that never had an inbox row (a group send to nobody)
            if timebudget.left() < BATCH_SECONDS:
                return Purged(rows, messages, batches, False, "time budget spent")
            ids = deps.db.run(lambda tx: Messages(tx).undelivered_before(before=horizon, limit=batch), write=False)
            if not ids:
                return Purged(rows, messages, batches, True)
            messages += self._delete_messages(ids)
            batches += 1

    def _delete(self, victims: List[Tuple[str, int, str]], *, full: bool) -> Tuple[int, int]:
        """(inbox rows, messages) deleted of one batch: whole messages where
        the batch has all of their rows (it is in message order, so only the
        last one may be cut short); a message with more rows than a batch
        goes batch by batch."""
        order = list(dict.fromkeys(m for _, _, m in victims))
        if len(order) > 1 and full:
            order.pop()  # the last message's other rows come in the next batch
        if len(order) == 1 and full:
            some = [u for u, _, m in victims if m == order[0]]
            removed = self._deps.db.run(
                lambda tx: Inbox(tx).remove_some_of(message_id=order[0], user_ids=some), write=True)
        else:
            removed = self._deps.db.run(lambda tx: Inbox(tx).remove_of(message_ids=order), write=True)
        # Its own short transaction: checking for rows left against the
        # first one's uncommitted deletes would cost InnoDB far more.
        return removed, self._delete_messages(order)

    def _delete_messages(self, ids: List[str]) -> int:
        return self._deps.db.run(lambda tx: Messages(tx).remove(message_ids=ids), write=True)

    def _forget(self, users: List[str]) -> bool:
        return self._deps.cache is None or self._deps.cache.forget(users)
