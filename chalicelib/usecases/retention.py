"""Retention: messages older than RETENTION_DAYS go, in bounded batches,
with every event that names them, and then the joins and leaves older than
that.

Each batch is two short transactions of its own: up to BATCH inbox rows of
the oldest messages (with the events of the messages whose rows all go),
then those of their messages that no inbox row references any more (a group
message's rows may take several batches; its message row and events go
with the last). A batch locks only old rows that no send touches, so a
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
from ..db import Tx
from ..repositories import Attachment, Attachments, Events, Inbox, Messages
from .attaching import SWEPT_AFTER, Attaching
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
    events: int = 0  # the other events that went: of the purged messages, and joins and leaves


class Retention:
    def __init__(self, deps: Deps) -> None:
        self._deps = deps

    def purge(self, *, batch: int = BATCH) -> Purged:
        deps = self._deps
        if deps.retention_days is None:
            swept = self._sweep_uploads(batch)
            return Purged(0, 0, swept, True, "RETENTION_DAYS is not set: every message is kept")
        horizon = deps.now() - timedelta(days=deps.retention_days)
        done = {"rows": 0, "messages": 0, "batches": 0, "events": 0}

        def stop(why: Optional[str] = None) -> Purged:
            return Purged(done["rows"], done["messages"], done["batches"], why is None, why, done["events"])

        while True:
            if timebudget.left() < BATCH_SECONDS:
                return stop("time budget spent")
            victims = deps.db.run(lambda tx: Messages(tx).oldest_deliveries(before=horizon, limit=batch), write=False)
            if not victims:
                break
            users = sorted({user_id for user_id, _, _ in victims} | set(self._event_holders(victims)))
            if not self._forget(users):
                return stop("the cache could not be reached")
            rows, events, gone = self._delete(victims, full=len(victims) == batch)
            self._forget(users)  # a refill that read before the delete may have landed meanwhile
            done["rows"] += rows
            done["events"] += events
            done["messages"] += gone
            done["batches"] += 1
        while True:  # messages no inbox row holds (sent to nobody before senders had streams)
            if timebudget.left() < BATCH_SECONDS:
                return stop("time budget spent")
            ids = deps.db.run(lambda tx: Messages(tx).undelivered_before(before=horizon, limit=batch), write=False)
            if not ids:
                break
            done["messages"] += self._delete_messages(ids)[0]
            done["batches"] += 1
        done["batches"] += self._sweep_uploads(batch)
        while True:  # joins and leaves
            if timebudget.left() < BATCH_SECONDS:
                return stop("time budget spent")
            keys = deps.db.run(lambda tx: Events(tx).oldest_unattached(before=horizon, limit=batch), write=False)
            if not keys:
                return stop()
            users = sorted({user_id for user_id, _ in keys})
            if not self._forget(users):
                return stop("the cache could not be reached")
            done["events"] += self._delete_events(keys)
            self._forget(users)
            done["batches"] += 1

    def _delete(self, victims: List[Tuple[str, int, str]], *, full: bool) -> Tuple[int, int, int]:
        """(inbox rows, events, messages) deleted of one batch: whole messages
        where the batch has all of their rows (it is in message order, so
        only the last one may be cut short), with their events; a message
        with more rows than a batch goes batch by batch."""
        order = list(dict.fromkeys(m for _, _, m in victims))
        if len(order) > 1 and full:
            order.pop()  # the last message's other rows come in the next batch
        if len(order) == 1 and full:
            some = [u for u, _, m in victims if m == order[0]]
            rows = self._deps.db.run(
                lambda tx: Inbox(tx).remove_some_of(message_id=order[0], user_ids=some), write=True)
        else:
            rows = self._deps.db.run(lambda tx: Inbox(tx).remove_of(message_ids=order), write=True)
        # Its own short transaction: checking for rows left against the
        # first one's uncommitted deletes would cost InnoDB far more.
        messages, events = self._delete_messages(order)
        return rows, events, messages

    def _sweep_uploads(self, batch: int) -> int:
        """Delete uploads never attached a day after they were asked for
        (files, then rows); the batches it took."""
        deps, batches = self._deps, 0
        while deps.storage is not None and timebudget.left() >= BATCH_SECONDS:
            stale = deps.db.run(lambda tx: Attachments(tx).unattached_before(
                before=deps.now() - SWEPT_AFTER, limit=batch), write=False)
            if not stale or not Attaching(deps).forget(stale):
                break
            batches += 1
        return batches

    def _event_holders(self, victims: List[Tuple[str, int, str]]) -> List[str]:
        ids = list({m for _, _, m in victims})
        return self._deps.db.run(lambda tx: Events(tx).holders_of(message_ids=ids), write=False)

    def _delete_events(self, keys: List[Tuple[str, int]]) -> int:
        return self._deps.db.run(lambda tx: Events(tx).remove(keys=keys), write=True)

    def _delete_messages(self, ids: List[str]) -> Tuple[int, int]:
        """(messages, events) deleted: those of these messages no inbox row
        holds any more, with their events, and then their files."""
        def work(tx: Tx) -> Tuple[int, int, List[Attachment]]:
            events = Events(tx).remove_unheld_of(message_ids=ids)  # before the rows they name
            files = Attachments(tx).of_messages(message_ids=ids)
            removed = Messages(tx).remove(message_ids=ids)
            left = set(Messages(tx).existing(message_ids=[a.message_id or "" for a in files]))
            return removed, events, [a for a in files if a.message_id not in left]

        removed, events, files = self._deps.db.run(work, write=True)
        Attaching(self._deps).forget(files)
        return removed, events

    def _forget(self, users: List[str]) -> bool:
        return self._deps.cache is None or self._deps.cache.forget(users)
