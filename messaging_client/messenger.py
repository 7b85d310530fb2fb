"""A user's client: the API, the local store, the outbox and the sync loop.

The sync loop keeps the store up to date with the cursor: over a WebSocket
when the server offers one (each frame that continues the cursor is stored
at once; a gap is filled by a cursor read; every connect starts with a
cursor read), else by long-polling `/read_messages` with `wait`. It never
trusts a frame over the cursor: a frame that is lost only delays a message
until the next cursor read.

The outbox sends what `send` queued, oldest first, with each message's own
idempotency key, until the server acknowledges it. Whether a failed send is
tried again is the client's one rule from the API's contract
(ApiError.retryable; each send carries its key, so it is safe to repeat):
network errors, 429, 503 and a gateway's own 502/503/504 are retried later
with capped backoff honouring Retry-After, also by a later process on the
same store; a Code the contract says never to retry (blocked, not a member,
unknown user, a server bug's 500) or an unknown answer marks the message
failed at once. Unauthorized (this device was signed out) is about the
device, not the message: flush() raises it and the message stays queued, to
go out with its key once the store's user signs in again.

Names: names() answers who users are from the store, asking /users for
those it does not know or knew a day ago; find() looks a handle up.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any, Callable, Dict, Iterable, List

from . import contract
from .api import ApiError, Client, CursorAhead, Unauthorized, User, backoff
from .store import NAMES_MAX_AGE_SECONDS, Name, Store

log = logging.getLogger(__name__)

PING_SECONDS = 300  # API Gateway closes a WebSocket idle for 10 minutes

OnMessage = Callable[[Dict[str, Any]], None]


class Messenger:
    def __init__(self, client: Client, store: Store, user_id: str) -> None:
        self.client, self.store, self.me = client, store, user_id
        self._stop = threading.Event()

    # ------------------------------------------------------------------ sending

    def send(self, target: str, text: str, *, group: bool = False) -> str:
        """Queue a message (stored before it goes out) and try to send it now;
        its idempotency key. The outcome is in store.outbox_state(key)."""
        key = self.store.queue("group" if group else "direct", target, text)
        self.flush()
        return key

    def flush_until(self, deadline: float) -> int:
        """Flush, waiting out each retry's back-off, until nothing is pending
        or the monotonic `deadline`; how many are still pending."""
        while True:
            left = self.flush()
            due = self.store.next_due()
            if not left or due is None or time.monotonic() + max(0.0, due - time.time()) > deadline:
                return left
            time.sleep(max(0.0, due - time.time()))

    def flush(self) -> int:
        """Send what is due in the outbox; how many are still pending.
        Unauthorized (the device was signed out) is raised, the message kept."""
        for item in self.store.pending():
            send = self.client.send_group if item.kind == "group" else self.client.send
            try:
                sent = send(self.me, item.target, item.text, client_message_id=item.client_message_id, retries=0)
            except Unauthorized:  # this device was signed out, not the message refused: it waits for a sign-in
                raise
            except ApiError as error:
                if error.retryable(idempotent=True):  # offline, rate limited, unavailable: later, the same key
                    self.store.retry_later(item.client_message_id, backoff(item.attempts, error.retry_after),
                                           f"{error.code}: {error.message}")
                else:  # the same send would fail the same way
                    self.store.failed(item.client_message_id, f"{error.code}: {error.message}")
                continue
            self.store.sent(item.client_message_id, sent.message_id, sent.sent_at)
        return len(self.store.pending(now=float("inf")))

    # ------------------------------------------------------------------ people

    def names(self, user_ids: Iterable[str]) -> Dict[str, Name]:
        """Who these users are, from the store; those it does not know, or
        knew a day ago or more, are asked of /users first (one call per 100,
        retried once). When /users cannot answer now, what the store has: a
        user may then be missing, to be shown by id. A signed-out token
        (Unauthorized) is raised."""
        wanted = [u for u in dict.fromkeys(user_ids) if u]
        known = self.store.names(wanted)
        oldest = time.time() - NAMES_MAX_AGE_SECONDS
        stale = [u for u in wanted if u not in known or known[u].fetched_at < oldest]
        if not stale:
            return known
        try:
            found = self.client.users(stale, retries=1)
        except Unauthorized:
            raise
        except ApiError as error:  # names are for showing: the ids will do until the next time
            log.info("names not refreshed (%s: %s)", error.code, error.message)
            return known
        self.store.remember_names(stale, found)
        return self.store.names(wanted)

    def find(self, handle: str) -> User:
        """The user with this handle (asked each time: a handle may change
        hands), remembered as the user's name."""
        user = self.client.find_user(handle)
        self.store.remember_names([user.user_id], [user])
        return user

    # ------------------------------------------------------------------ receiving

    def catch_up(self, *, wait: int = 0) -> List[Dict[str, Any]]:
        """Read from the cursor until nothing more is waiting; the new messages."""
        new: List[Dict[str, Any]] = []
        while True:
            try:
                page = self.client.read_messages(self.me, after=self.store.cursor, wait=wait or None)
            except CursorAhead as error:
                log.warning("the server's inbox ends at seq %d, before this store's cursor; reading on from there",
                            error.newest_seq)
                self.store.rewind(error.newest_seq)
                continue
            new += self.store.apply(page.messages)
            if wait and page.wait_refused and not page.messages:
                # Answered at once: this user holds the most waiting reads
                # (other devices). Pause, or this loop would poll without rest.
                self._stop.wait(contract.WAIT_REFUSED_PAUSE_SECONDS)
            if not page.has_more:
                return new
            wait = 0

    def stop(self) -> None:
        self._stop.set()

    def run(self, on_message: OnMessage, *, websocket: bool = True) -> None:
        """The sync loop, until stop(): WebSocket when offered, else long-poll;
        the outbox is flushed as it goes. What the rule retries for a read
        (network trouble, 429, 503) backs off and tries again; any other
        refusal (e.g. Unauthorized: the token is no longer valid) is raised."""
        attempt = 0
        while not self._stop.is_set():
            try:
                self.flush()
                ticket = self.client.connect_ticket(self.me) if websocket else None
                if ticket is not None and ticket.url:
                    self._websocket(f"{ticket.url}?ticket={ticket.ticket}", on_message)
                else:
                    for item in self.catch_up(wait=contract.MAX_WAIT_SECONDS):
                        on_message(item)
                attempt = 0
            except (ApiError, OSError, EOFError) as error:  # OSError, EOFError: the WebSocket's network
                # Reads and tickets are safe to repeat; what the rule never retries fails the same way again.
                if isinstance(error, ApiError) and not error.retryable(idempotent=True):
                    raise
                retry_after = error.retry_after if isinstance(error, ApiError) else None
                self._stop.wait(backoff(attempt, retry_after))
                attempt += 1

    def _websocket(self, url: str, on_message: OnMessage) -> None:
        from websockets.exceptions import ConnectionClosed, InvalidStatus
        from websockets.sync.client import connect

        try:
            socket = connect(url, open_timeout=10, close_timeout=2, max_size=2 ** 20)
        except InvalidStatus as refused:  # e.g. 503: live delivery unavailable now, long-poll meanwhile
            log.info("WebSocket refused (%s); long-polling", refused.response.status_code)
            for item in self.catch_up(wait=contract.MAX_WAIT_SECONDS):
                on_message(item)
            return
        with socket:
            for item in self.catch_up():  # what came while we were not connected
                on_message(item)
            last_sent = time.monotonic()
            while not self._stop.is_set():
                try:
                    data = socket.recv(timeout=1.0)
                except TimeoutError:
                    if self.store.pending():
                        self.flush()
                    if time.monotonic() - last_sent > PING_SECONDS:
                        socket.send('{"action":"ping"}')
                        last_sent = time.monotonic()
                    continue
                except ConnectionClosed:
                    return
                frame = json.loads(data)
                if frame.get("type") != "message":
                    continue
                new = self.store.apply([frame["message"]])
                if not new and frame["message"]["seq"] > self.store.cursor:
                    new = self.catch_up()  # a gap: the cursor fills it
                for item in new:
                    on_message(item)

