"""Waking a long-poll when a delivery to its user commits.

A waiting read listens *before* it reads, so a delivery that commits between
its read and its wait still wakes it. Two ways to hear of a delivery:

- With Redis: the delivery's cache write publishes on the user's channel
  (keys.wake_channel) in the same round trip (cache.DELIVER). Each process
  holds one subscription for all its waiting reads (one connection, read by
  one thread, whatever the number of waits): any container's send wakes the
  reader, and waiting costs no database statement at all.
- Without Redis (or while it is down): sends in this process set the
  waiter's event at once, and the waiter asks the database for the user's
  newest seq at most once a second, for writers in other processes.

Nothing here is the truth: a woken reader reads with its cursor, and a
wake-up that never comes only means the wait runs to its end.
"""
from __future__ import annotations

import collections
import contextlib
import logging
import threading
import time
from typing import Any, Callable, Deque, Dict, Iterable, Iterator, Optional, Set

from . import keys
from .metering import count_redis_round_trip
from .redislink import SKIPPED, RedisLink

log = logging.getLogger(__name__)

RECHECK_SECONDS = 1.0  # without a subscription: how often a waiter asks the database
CONFIRM_SECONDS = 1.0  # how long a waiter waits for Redis to confirm its subscription


class Waiter:
    """One waiting read's ear for its user's deliveries."""

    def __init__(self, event: threading.Event, subscribed: Callable[[], bool],
                 newest_seq: Callable[[], Optional[int]]) -> None:
        self._event = event
        self._subscribed = subscribed
        self._newest_seq = newest_seq

    def wait(self, *, until: float, newer_than: int) -> bool:
        """Until a delivery newer than `newer_than` may have landed (True) or
        the monotonic time `until` (False)."""
        while True:
            left = until - time.monotonic()
            if left <= 0:
                return False
            if self._event.wait(min(RECHECK_SECONDS, left)):
                self._event.clear()
                return True
            if not self._subscribed():  # nobody would tell us: ask the database
                newest = self._newest_seq()
                if newest is not None and newest > newer_than:
                    return True


class Subscription:
    """This process's one Redis subscription. A waiter joins its user's
    channel before it reads (SUBSCRIBE the first time, confirmed by Redis
    before the waiter goes on) and leaves after (UNSUBSCRIBE with the last);
    a daemon thread reads every channel's messages and hands them on.
    Commands go out under one lock, so they reach Redis in the order the
    subscription's state changed, and replies come back in that order."""

    def __init__(self, link: RedisLink, on_message: Callable[[str], None]) -> None:
        self._link = link
        self._on_message = on_message
        self._lock = threading.Lock()
        self._waiters: Dict[str, int] = {}  # channel -> waiters in this process
        self._unconfirmed: Dict[str, Deque[threading.Event]] = {}  # per SUBSCRIBE sent, in order
        self._confirmed: Dict[str, threading.Event] = {}  # the channel's latest SUBSCRIBE
        self._pubsub: Any = None
        self._reader: Optional[threading.Thread] = None

    def join(self, channel: str) -> Callable[[], bool]:
        """Count a waiter on `channel`; the returned call says whether Redis
        is telling this process of the channel's messages (confirmed, and
        not broken since)."""
        with self._lock:
            self._waiters[channel] = self._waiters.get(channel, 0) + 1
            confirmed = self._confirmed.get(channel)
            if confirmed is None:
                confirmed = self._subscribe(channel)
            pubsub = self._pubsub
        if confirmed is not None:
            confirmed.wait(CONFIRM_SECONDS)
        return lambda: pubsub is not None and pubsub is self._pubsub and bool(confirmed and confirmed.is_set())

    def leave(self, channel: str) -> None:
        with self._lock:
            left = self._waiters.get(channel, 1) - 1
            if left > 0:
                self._waiters[channel] = left
                return
            self._waiters.pop(channel, None)
            if self._confirmed.pop(channel, None) is not None and self._pubsub is not None:
                pubsub = self._pubsub

                def unsubscribe() -> None:
                    count_redis_round_trip()
                    pubsub.unsubscribe(channel)

                if self._link.guard(unsubscribe) is SKIPPED:
                    self._break(pubsub)

    def _subscribe(self, channel: str) -> Optional[threading.Event]:
        """SUBSCRIBE (the caller holds the lock); None when Redis is skipped or failed."""
        if self._pubsub is None:
            if not self._link.available:
                return None
            self._pubsub = self._link.client.pubsub()
        pubsub, event = self._pubsub, threading.Event()

        def subscribe() -> None:
            count_redis_round_trip()
            pubsub.subscribe(channel)

        if self._link.guard(subscribe) is SKIPPED:
            self._break(pubsub)
            return None
        self._unconfirmed.setdefault(channel, collections.deque()).append(event)
        self._confirmed[channel] = event
        if self._reader is None or not self._reader.is_alive():
            self._reader = threading.Thread(target=self._read, args=(pubsub,), name="wakeups", daemon=True)
            self._reader.start()
        return event

    def _read(self, pubsub: Any) -> None:
        while pubsub is self._pubsub:
            message = self._link.guard(lambda: pubsub.get_message(timeout=RECHECK_SECONDS))
            if message is SKIPPED:
                with self._lock:
                    self._break(pubsub)
                return
            if not message:
                continue
            channel = message["channel"].decode()
            if message["type"] == "message":
                self._on_message(channel)
            elif message["type"] == "subscribe":
                with self._lock:
                    pending = self._unconfirmed.get(channel)
                    if pending:
                        pending.popleft().set()
                    if not pending:
                        self._unconfirmed.pop(channel, None)

    def _break(self, pubsub: Any) -> None:
        """Redis failed under this subscription (the caller holds the lock):
        its waiters poll the database from now on, and the next join after
        the link's back-off subscribes anew."""
        if pubsub is not self._pubsub:
            return
        self._pubsub = None
        self._confirmed.clear()
        self._unconfirmed.clear()
        try:
            pubsub.close()
        except Exception:  # noqa: BLE001 - already broken
            pass


class Wakeups:
    def __init__(self, link: Optional[RedisLink] = None) -> None:
        self._lock = threading.Lock()
        self._waiting: Dict[str, Set[threading.Event]] = {}  # wake channel -> this process's waiters
        self._subscription = Subscription(link, self._wake) if link is not None else None

    def notify(self, user_ids: Iterable[str]) -> None:
        """Wake this process's waiters of these users (after a commit): one
        lock for a group send's many users, none when nobody waits here."""
        with self._lock:
            if not self._waiting:
                return
            channels = [c for c in map(keys.wake_channel, user_ids) if c in self._waiting]
        for channel in channels:
            self._wake(channel)

    def _wake(self, channel: str) -> None:
        with self._lock:
            events = list(self._waiting.get(channel, ()))
        for event in events:
            event.set()

    def waiting(self, user_id: str) -> bool:
        """Whether a read of this user waits in this process."""
        with self._lock:
            return keys.wake_channel(user_id) in self._waiting

    @contextlib.contextmanager
    def listen(self, user_id: str, newest_seq: Callable[[], Optional[int]]) -> Iterator[Waiter]:
        """A Waiter for `user_id`, listening from now until the block ends.
        `newest_seq` asks the database (used only without a subscription)."""
        channel, event = keys.wake_channel(user_id), threading.Event()
        with self._lock:
            self._waiting.setdefault(channel, set()).add(event)
        subscribed: Callable[[], bool] = lambda: False  # noqa: E731
        if self._subscription is not None:
            subscribed = self._subscription.join(channel)
        try:
            yield Waiter(event, subscribed, newest_seq)
        finally:
            if self._subscription is not None:
                self._subscription.leave(channel)
            with self._lock:
                events = self._waiting.get(channel, set())
                events.discard(event)
                if not events:
                    self._waiting.pop(channel, None)
