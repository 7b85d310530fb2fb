"""Waking a long-poll when a delivery to its user commits.

A waiting read listens *before* it reads, so a delivery that commits between
its read and its wait still wakes it. Two ways to hear of a delivery:

- With Redis: the delivery's cache write publishes on the user's channel
  (keys.wake_channel) in the same round trip (cache.DELIVER), and the waiter holds a subscription on
  its user's channel: any container's send wakes it, and waiting costs no
  database statement at all.
- Without Redis (or while it is down): sends in this process set the
  waiter's event at once, and the waiter asks the database for the user's
  newest seq at most once a second, for writers in other processes.

Nothing here is the truth: a woken reader reads with its cursor, and a
wake-up that never comes only means the wait runs to its end.
"""
from __future__ import annotations

import contextlib
import threading
import time
from typing import Any, Callable, Dict, Iterable, Iterator, Optional, Set

from . import keys
from .metering import count_redis_round_trip
from .redislink import SKIPPED, RedisLink

RECHECK_SECONDS = 1.0  # without Redis: how often a waiter asks the database


class Waiter:
    """One waiting read's ear for its user's deliveries."""

    def __init__(self, event: threading.Event, subscription: Any, channel: str,
                 newest_seq: Callable[[], Optional[int]], link: Optional[RedisLink]) -> None:
        self._event = event
        self._subscription = subscription  # a redis-py PubSub, or None
        self._channel = channel.encode()
        self._newest_seq = newest_seq
        self._link = link

    def wait(self, *, until: float, newer_than: int) -> bool:
        """Until a delivery newer than `newer_than` may have landed (True) or
        the monotonic time `until` (False)."""
        while True:
            left = until - time.monotonic()
            if left <= 0:
                return False
            if self._subscription is not None:
                heard = self._link.guard(lambda: self._listen(left)) if self._link else SKIPPED
                if heard is SKIPPED:  # Redis went away: poll like the embedded default
                    self._subscription = None
                    continue
                if heard:
                    return True
                continue
            if self._event.wait(min(RECHECK_SECONDS, left)):
                self._event.clear()
                return True
            newest = self._newest_seq()
            if newest is not None and newest > newer_than:
                return True

    def _listen(self, seconds: float) -> bool:
        message = self._subscription.get_message(timeout=seconds)
        return bool(message) and message["type"] == "message" and message["channel"] == self._channel


class Wakeups:
    def __init__(self, link: Optional[RedisLink] = None) -> None:
        self._link = link
        self._lock = threading.Lock()
        self._waiting: Dict[str, Set[threading.Event]] = {}
        self._subscriptions = threading.local()  # one PubSub per thread, reused across waits

    def notify(self, user_ids: Iterable[str]) -> None:
        """Wake this process's waiters of these users (after a commit)."""
        with self._lock:
            events = [e for user_id in user_ids for e in self._waiting.get(user_id, ())]
        for event in events:
            event.set()

    @contextlib.contextmanager
    def listen(self, user_id: str, newest_seq: Callable[[], Optional[int]]) -> Iterator[Waiter]:
        """A Waiter for `user_id`, listening from now until the block ends.
        `newest_seq` asks the database (used only without Redis)."""
        event = threading.Event()
        with self._lock:
            self._waiting.setdefault(user_id, set()).add(event)
        channel = keys.wake_channel(user_id)
        subscription = self._subscribe(channel)
        try:
            yield Waiter(event, subscription, channel, newest_seq, self._link)
        finally:
            with self._lock:
                events = self._waiting.get(user_id, set())
                events.discard(event)
                if not events:
                    self._waiting.pop(user_id, None)
            if subscription is not None:
                self._unsubscribe(subscription, channel)

    def _subscribe(self, channel: str) -> Any:
        if self._link is None:
            return None

        def subscribe() -> Any:
            pubsub = getattr(self._subscriptions, "pubsub", None)
            if pubsub is None:
                pubsub = self._subscriptions.pubsub = self._link.client.pubsub()
            count_redis_round_trip()
            pubsub.subscribe(channel)
            # Wait for the server's confirmation: from here on no publish is missed.
            deadline = time.monotonic() + 1.0
            while time.monotonic() < deadline:
                reply = pubsub.get_message(timeout=deadline - time.monotonic())
                if reply and reply["type"] == "subscribe" and reply["channel"] == channel.encode():
                    return pubsub
            return None

        subscribed = self._link.guard(subscribe)
        if subscribed is SKIPPED or subscribed is None:
            self._drop_subscription()
            return None
        return subscribed

    def _unsubscribe(self, pubsub: Any, channel: str) -> None:
        def unsubscribe() -> None:
            count_redis_round_trip()
            pubsub.unsubscribe(channel)

        if self._link.guard(unsubscribe) is SKIPPED:
            self._drop_subscription()

    def _drop_subscription(self) -> None:
        pubsub = getattr(self._subscriptions, "pubsub", None)
        self._subscriptions.pubsub = None
        if pubsub is not None:
            try:
                pubsub.close()
            except Exception:
                pass
