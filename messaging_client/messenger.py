"""A user's client: the API, the local store, the outbox and the sync loop.

The sync loop keeps the store up to date with the user's stream (`/sync`
and its cursor): every event, the user's own messages from other devices,
edits, deletions, reads, receipts and memberships included. Over a WebSocket
when the server offers one (each frame's `event` that continues the cursor
is applied at once; a gap is filled by a cursor read; every connect starts
with a cursor read), else by long-polling `/sync` with `wait`. It never
trusts a frame over the cursor: a frame that is lost only delays an event
until the next cursor read.

What it reports is news (Store.apply): `on_message` gets each new message
(received, or sent from another device; not this device's own sends coming
back), `on_event` every new event of any type.

Editing, deleting and reading go to the server at once and are applied to
the store when acknowledged (their events, which follow, say the same).
mark_read() moves the server's read marker of a conversation to its newest
message from others, and only forward: the user's other devices see it, and
in a direct conversation the other person gets a receipt (unless the user
turned receipts off).

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

A send may carry files: queued by path, each is uploaded (streamed from
disk) when the send is first tried, and its attachment id kept in the
outbox, so a retry sends the same ids with the same key and uploads
nothing again. An upload is retried by the same rule as the send (a
repeat of /upload_url or of the form makes nothing anyone sees twice); a
refused one (a type the server does not take, a file too large) marks the
send failed, as does a file that cannot be read. Uploads kept from an
earlier attempt that the server no longer takes (AttachmentNotReady: an
upload never attached is deleted after a day) are uploaded again, once.

Names: names() answers who users are from the store, asking /users for
those it does not know or knew a day ago; find() looks a handle up.
"""
from __future__ import annotations

import functools
import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union

from . import contract
from .api import ApiError, AttachmentNotReady, Client, CursorAhead, Edited, Unauthorized, User, backoff, content_type_of
from .store import NAMES_MAX_AGE_SECONDS, Name, OutboxFile, Pending, Store

log = logging.getLogger(__name__)

PING_SECONDS = 300  # API Gateway closes a WebSocket idle for 10 minutes

OnMessage = Callable[[Dict[str, Any]], None]
OnEvent = Callable[[Dict[str, Any]], None]
OnUpload = Callable[[str, int, int], None]  # (file name, bytes sent, bytes in all)
FileToSend = Union[str, "os.PathLike[str]", OutboxFile]


def outbox_file(path: Union[str, "os.PathLike[str]"], *, content_type: Optional[str] = None,
                file_name: Optional[str] = None) -> OutboxFile:
    """A file for send(): its type from its name unless given, its name shown as the file's unless given."""
    shown = file_name or Path(path).name
    return OutboxFile(str(Path(path).absolute()), content_type or content_type_of(shown), shown)


class Messenger:
    def __init__(self, client: Client, store: Store, user_id: str) -> None:
        self.client, self.store, self.me = client, store, user_id
        self._stop = threading.Event()
        self.on_upload: Optional[OnUpload] = None  # told how each upload goes, as it goes

    # ------------------------------------------------------------------ sending

    def send(self, target: str, text: str = "", *, group: bool = False, files: Sequence[FileToSend] = ()) -> str:
        """Queue a message (stored before it goes out) and try to send it now;
        its idempotency key. The outcome is in store.outbox_state(key).
        `files`: paths (or outbox_file()s, for another type or name) the
        message carries, uploaded when it goes out."""
        queued = [f if isinstance(f, OutboxFile) else outbox_file(f) for f in files]
        key = self.store.queue("group" if group else "direct", target, text, queued)
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
            fresh = True
            try:
                attachment_ids, fresh = self._uploads(item)
                sent = send(self.me, item.target, item.text or None, attachment_ids=attachment_ids,
                            client_message_id=item.client_message_id, retries=0)
            except Unauthorized:  # this device was signed out, not the message refused: it waits for a sign-in
                raise
            except OSError as error:  # a file that is gone or cannot be read: it will not be readable by retrying
                self.store.failed(item.client_message_id, f"FileUnreadable: cannot read {error.filename}"
                                                          f" ({error.strerror or type(error).__name__})")
                continue
            except AttachmentNotReady as error:
                if not fresh:  # uploads of an earlier attempt, gone from the server: uploaded again, once
                    self.store.forget_uploads(item.client_message_id)
                    self.store.retry_later(item.client_message_id, 0, f"{error.code}: {error.message}")
                else:
                    self.store.failed(item.client_message_id, f"{error.code}: {error.message}")
                continue
            except ApiError as error:
                if error.retryable(idempotent=True):  # offline, rate limited, unavailable: later, the same key
                    self.store.retry_later(item.client_message_id, backoff(item.attempts, error.retry_after),
                                           f"{error.code}: {error.message}")
                else:  # the same send would fail the same way
                    self.store.failed(item.client_message_id, f"{error.code}: {error.message}")
                continue
            self.store.sent(item.client_message_id, sent.message_id, sent.sent_at)
        return len(self.store.pending(now=float("inf")))

    def _uploads(self, item: Pending) -> Tuple[List[str], bool]:
        """Upload the send's files not uploaded yet, recording each id as it
        is done; (the ids to send, in order; whether every one was uploaded now)."""
        fresh = True
        for position, file in enumerate(item.files):
            if file.attachment_id is not None:
                fresh = False
                continue
            on_upload = self.on_upload
            progress = None if on_upload is None else functools.partial(on_upload, file.file_name)
            attachment = self.client.upload(file.path, content_type=file.content_type, file_name=file.file_name,
                                            progress=progress, retries=0)
            self.store.uploaded(item.client_message_id, position, attachment.attachment_id, attachment.size)
        if not item.files:
            return [], fresh
        # As recorded: another process flushing this outbox may have recorded its upload of a file first.
        return [str(f.attachment_id) for f in self.store.outbox_files(item.client_message_id)], fresh

    # ------------------------------------------------------------------ editing, deleting, reading

    def edit(self, message_id: str, text: str) -> Edited:
        """A new text for a message this user sent (safe to retry: the same text)."""
        edited = self.client.edit_message(message_id, text)
        self.store.edited(message_id, text, edited.edited_at)
        return edited

    def delete(self, message_id: str) -> None:
        """Delete a message this user sent, for everyone (idempotent)."""
        self.client.delete_message(message_id)
        self.store.deleted(message_id)

    def mark_read(self, conversation: str) -> Optional[str]:
        """Tell the server the conversation is read up to its newest message
        from others, when the marker is behind it (it never moves back); the
        message id marked, or None when there was nothing new to mark."""
        newest = self.store.unread_up_to(conversation)
        if newest is None:
            return None
        kind, _, target = conversation.partition(":")
        if kind == "group":
            self.client.mark_read(newest["message_id"], group_id=target)
        else:
            self.client.mark_read(newest["message_id"], with_user_id=target)
        self.store.mark_read(conversation, newest["seq"], newest["message_id"])
        return str(newest["message_id"])

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
        """Read the stream from the cursor until nothing more is waiting; the
        new messages (every new event: sync())."""
        return [event for event in self.sync(wait=wait) if event.get("type", "message") == "message"]

    def sync(self, *, wait: int = 0) -> List[Dict[str, Any]]:
        """Read the stream from the cursor until nothing more is waiting; the
        news (Store.apply), every type, in seq order."""
        news: List[Dict[str, Any]] = []
        while True:
            try:
                page = self.client.sync(after=self.store.cursor, wait=wait or None)
            except CursorAhead as error:
                log.warning("the server's stream ends at seq %d, before this store's cursor; reading on from there",
                            error.newest_seq)
                self.store.rewind(error.newest_seq)
                continue
            news += self.store.apply(page.events)
            # Refused a wait (this user holds the most waiting reads, on other
            # devices): pause, or this loop would poll without rest.
            if wait and not page.events and not page.has_more and page.wait_refused:
                self._stop.wait(contract.WAIT_REFUSED_PAUSE_SECONDS)
            if not page.has_more:
                return news
            wait = 0

    def stop(self) -> None:
        self._stop.set()

    def run(self, on_message: Optional[OnMessage] = None, *, on_event: Optional[OnEvent] = None,
            websocket: bool = True) -> None:
        """The sync loop, until stop(): WebSocket when offered, else long-poll;
        the outbox is flushed as it goes. `on_message` gets each new message,
        `on_event` each new event (messages too). What the rule retries for a
        read (network trouble, 429, 503) backs off and tries again; any other
        refusal (e.g. Unauthorized: the token is no longer valid) is raised."""

        def report(news: List[Dict[str, Any]]) -> None:
            for event in news:
                if on_event is not None:
                    on_event(event)
                if on_message is not None and event.get("type", "message") == "message":
                    on_message(event)

        attempt = 0
        while not self._stop.is_set():
            try:
                self.flush()
                ticket = self.client.connect_ticket(self.me) if websocket else None
                if ticket is not None and ticket.url:
                    self._websocket(f"{ticket.url}?ticket={ticket.ticket}", report)
                else:
                    report(self.sync(wait=contract.MAX_WAIT_SECONDS))
                attempt = 0
            except (ApiError, OSError, EOFError) as error:  # OSError, EOFError: the WebSocket's network
                # Reads and tickets are safe to repeat; what the rule never retries fails the same way again.
                if isinstance(error, ApiError) and not error.retryable(idempotent=True):
                    raise
                retry_after = error.retry_after if isinstance(error, ApiError) else None
                self._stop.wait(backoff(attempt, retry_after))
                attempt += 1

    def _websocket(self, url: str, report: Callable[[List[Dict[str, Any]]], None]) -> None:
        from websockets.exceptions import ConnectionClosed, InvalidStatus
        from websockets.sync.client import connect

        try:
            socket = connect(url, open_timeout=10, close_timeout=2, max_size=2 ** 20)
        except InvalidStatus as refused:  # e.g. 503: live delivery unavailable now, long-poll meanwhile
            log.info("WebSocket refused (%s); long-polling", refused.response.status_code)
            report(self.sync(wait=contract.MAX_WAIT_SECONDS))
            return
        with socket:
            report(self.sync())  # what came while we were not connected
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
                event = frame_event(json.loads(data))
                if event is None:
                    continue
                news = self.store.apply([event])
                if event["seq"] > self.store.cursor:
                    news += self.sync()  # a gap: the cursor fills it
                report(news)


def frame_event(frame: Any) -> Optional[Dict[str, Any]]:
    """The stream event a WebSocket frame carries (`{"type": "event", "event": ...}`,
    or a received message's `{"type": "message", "message": ..., "event": ...}`); None for others (a pong)."""
    if not isinstance(frame, dict) or frame.get("type") not in ("event", "message"):
        return None
    event = frame.get("event")
    return event if isinstance(event, dict) and isinstance(event.get("seq"), int) else None
