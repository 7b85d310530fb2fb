"""One typed method per endpoint of the messaging API, over httpx.

Errors are raised as ApiError (or a subclass per `Code`), carrying the
server's Code and Message. Whether a failed call is tried again is one rule,
from the API's contract (contract.py, generated from the server's), which
the outbox and the sync loop use too (ApiError.retryable):

- an answer with the error envelope: its Code's `retry` in contract.CODES:
  'always' (nothing was done, e.g. 429) is retried, 'if_idempotent' (the
  outcome may be unknown, e.g. 503) only for a call that is safe to repeat
  (reads, idempotent writes, sends with a client_message_id), 'never' is not;
- no answer (network error, timeout): as 'if_idempotent';
- an answer without the envelope (API Gateway's own `{"message": ...}`) with
  status 502, 503 or 504: as 'if_idempotent'; anything else unknown: never.

Retries honour Retry-After, with capped exponential backoff; an answer whose
Retry-After is longer than the cap (e.g. a sign-in refused for 15 minutes
after too many wrong passwords) is raised at once, since retrying sooner
would only be refused again. Every call has explicit connect and read timeouts.

Which calls are safe to repeat (`safe` below): reads (/users, /find_user,
/sessions, /read_messages, /sync, /conversations, /history, /group_info,
/account, /connect_ticket); /block and /update_group (they set a state);
sends with their key; /edit_message (a repeat sets the same text again),
/delete_message (deleting a deleted message answers the same and adds no
event) and /mark_read (a marker never moves back: a repeat changes nothing); /logout (what is signed out stays
signed out: a repeat revokes nothing more, or is refused 401 when the first
signed this device out); /delete_account (a repeat after the first deleted
the account is refused 401: nothing is done twice); /update_account without
a new password (it sets values). Not safe: /register and /create_group
(a repeat makes another), /login, /link and /link_code (a repeat makes
another session, redeems a used code or replaces the code just shown), and
/update_account with a new password (a repeat would present the old
password as current, be refused and counted as a failed sign-in).
/upload_url is taken as safe too: a repeat hands out another form, and an
upload never attached is deleted by the server a day later, unseen by anyone.

Attachments (upload, download) go to storage, not to the API: S3 deployed,
the development server's own /_uploads and /_files/ on `make run` (a
relative URL, resolved against the API's base URL). The file is streamed
from disk and to disk in chunks, never held whole in memory: httpx renders
a multipart part that is a file object by read()ing it 64 KiB at a time,
with a Content-Length from the file's size (S3 refuses a chunked POST), and
every form field goes before the file, as S3 requires. No Authorization
header goes to storage: the form's signature (or the URL's) is what it
checks. The form POST is safe to repeat (the same key is written again);
storage's own 500 and 503 are retried as a gateway's are.
"""
from __future__ import annotations

import mimetypes
import os
import random
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Callable, Dict, List, Optional, Sequence, Union, cast

import httpx

from . import contract

DEFAULT_API = "http://127.0.0.1:8000"

# Types the server allows whose usual names mimetypes does not know or names
# otherwise (it says audio/x-wav; HEIC and WebP depend on the system's tables).
_TYPES = {".wav": "audio/wav", ".heic": "image/heic", ".webp": "image/webp", ".weba": "audio/webm",
          ".m4a": "audio/mp4", ".mp3": "audio/mpeg", ".oga": "audio/ogg", ".txt": "text/plain"}
CHUNK_BYTES = 64 * 1024

# (bytes done, bytes in all), called as a file goes up or comes down.
Progress = Callable[[int, int], None]


# The contract's retry classes (contract.CODES' second field).
ALWAYS, IF_IDEMPOTENT, NEVER = "always", "if_idempotent", "never"
# Statuses a gateway in front of the API answers with its own body (no
# envelope) when the API did not answer in time or at all: the call may or
# may not have been done, as when the network fails.
GATEWAY_STATUSES = (502, 503, 504)


def retry_class(status: int, code: Optional[str]) -> str:
    """The contract's retry class of a failed answer: `code` is the envelope's
    Code, None for an answer without the envelope (no answer at all is Offline's)."""
    if code is not None:
        entry = contract.CODES.get(code)
        return entry[1] if entry else NEVER  # a Code this client does not know
    return IF_IDEMPOTENT if status in GATEWAY_STATUSES else NEVER


class ApiError(Exception):
    """The server refused the call: its status, Code and Message, and `retry`:
    whether it may be sent again ('always', 'if_idempotent' or 'never')."""

    def __init__(self, status: int, code: str, message: str, *, retry_after: Optional[float] = None,
                 body: Optional[Dict[str, Any]] = None, retry: Optional[str] = None) -> None:
        super().__init__(f"{code}: {message}")
        self.status, self.code, self.message = status, code, message
        self.retry_after = retry_after
        self.body = body or {}
        self.retry = retry if retry is not None else retry_class(status, code)

    def retryable(self, idempotent: bool) -> bool:
        """May the call that failed so be sent again? `idempotent`: repeating
        it cannot do it twice (a read, an idempotent write, a send with its key)."""
        return self.retry == ALWAYS or (self.retry == IF_IDEMPOTENT and idempotent)


class Offline(ApiError):
    """The server could not be reached (or did not answer in time)."""

    def __init__(self, message: str) -> None:
        super().__init__(0, "Offline", message, retry=IF_IDEMPOTENT)


class Unauthorized(ApiError):
    pass


class RateLimited(ApiError):
    pass


class ServiceUnavailable(ApiError):
    pass


class BadCredentials(ApiError):
    """A wrong handle or password, or a bad, used or expired link code."""


class HandleTaken(ApiError):
    pass


class UserNotFound(ApiError):
    pass


class Forbidden(ApiError):
    """Not the caller's to do: e.g. an edit or deletion of another user's message."""


class MessageNotFound(ApiError):
    pass


class EditWindowClosed(ApiError):
    pass


class MessageDeleted(ApiError):
    """An edit of a deleted message."""


class CursorAhead(ApiError):
    @property
    def newest_seq(self) -> int:
        return int(self.body.get("newest_seq", 0))


class AttachmentNotReady(ApiError):
    """A send carried an upload that is not stored (yet), not the caller's, or attached already."""


class AttachmentNotFound(ApiError):
    """No message the caller holds carries this attachment."""


class PayloadTooLarge(ApiError):
    """A file larger than the server takes (MAX_ATTACHMENT_BYTES)."""


_BY_CODE = {"AttachmentNotReady": AttachmentNotReady, "AttachmentNotFound": AttachmentNotFound,
            "PayloadTooLarge": PayloadTooLarge, "Unauthorized": Unauthorized, "RateLimited": RateLimited,
            "ServiceUnavailable": ServiceUnavailable,
            "CursorAhead": CursorAhead, "BadCredentials": BadCredentials, "HandleTaken": HandleTaken,
            "UserNotFound": UserNotFound, "Forbidden": Forbidden, "MessageNotFound": MessageNotFound,
            "EditWindowClosed": EditWindowClosed, "MessageDeleted": MessageDeleted}


@dataclass(frozen=True)
class SignedIn:
    """A new session: what /register, /login and /link answer."""

    user_id: str
    user_name: str
    token: str
    handle: Optional[str] = None
    session_id: Optional[str] = None

    @classmethod
    def of(cls, body: Dict[str, Any]) -> "SignedIn":
        return cls(body["user_id"], body["user_name"], body["token"], body.get("handle"), body.get("session_id"))


@dataclass(frozen=True)
class User:
    """Who a user is, as /users, /find_user and /update_account answer."""

    user_id: str
    user_name: str
    handle: Optional[str]

    @classmethod
    def of(cls, body: Dict[str, Any]) -> "User":
        return cls(body["user_id"], body["user_name"], body.get("handle"))


@dataclass(frozen=True)
class Account(User):
    """The caller's own account, as /account and /update_account answer."""

    has_password: bool = False
    read_receipts: bool = True  # False: reading sends the other person no `receipt`

    @classmethod
    def of(cls, body: Dict[str, Any]) -> "Account":
        return cls(body["user_id"], body["user_name"], body.get("handle"), bool(body.get("has_password", False)),
                   bool(body.get("read_receipts", True)))


@dataclass(frozen=True)
class LinkCode:
    code: str  # XXXXX-XXXXX: typed on the new device (`link`)
    expires_in: int  # seconds


@dataclass(frozen=True)
class DeviceSession:
    """One signed-in device of the user."""

    session_id: str
    device_name: str
    created_at: str
    current: bool  # the session of the token that asked


@dataclass(frozen=True)
class Sent:
    message_id: str
    sent_at: str
    duplicate: bool
    recipients: Optional[int] = None


@dataclass(frozen=True)
class Page:
    messages: List[Dict[str, Any]]
    next_after: int
    has_more: bool
    wait_refused: Optional[str] = None  # X-Wait-Refused: the wait was answered at once (too many waiting)


@dataclass(frozen=True)
class SyncPage:
    """A page of the user's stream (/sync): every event, in seq order."""

    events: List[Dict[str, Any]]
    next_after: int
    has_more: bool
    wait_refused: Optional[str] = None  # X-Wait-Refused, as Page's


@dataclass(frozen=True)
class Edited:
    message_id: str
    edited_at: str


@dataclass(frozen=True)
class ConversationsPage:
    """/conversations: each {"kind", "id", "name", "last_message" (a message
    event or None), "unread", "read_up_to", "read_up_to_seq"}, most recent
    activity first; next_before pages on (None: no more)."""

    conversations: List[Dict[str, Any]]
    next_before: Optional[int]


@dataclass(frozen=True)
class HistoryPage:
    """/history: a conversation's message events, newest first; next_before_seq pages on (None: the start)."""

    messages: List[Dict[str, Any]]
    next_before_seq: Optional[int]


@dataclass(frozen=True)
class GroupInfo:
    group_id: str
    group_name: str
    member_count: int
    members: List[User]  # in user id order
    next_after_user_id: Optional[str]  # pass as after_user_id for the next page (None: no more)


@dataclass(frozen=True)
class Ticket:
    ticket: str
    expires_in: int
    url: Optional[str]  # None: the server offers no WebSocket


@dataclass(frozen=True)
class UploadForm:
    """/upload_url's answer: POST `fields` and then the file, as `file`, to `url` within `expires_in` seconds."""

    attachment_id: str
    url: str
    fields: Dict[str, str]
    expires_in: int


@dataclass(frozen=True)
class Attachment:
    """A file a message carries (its `attachments` items)."""

    attachment_id: str
    content_type: str
    size: int
    file_name: Optional[str] = None

    @classmethod
    def of(cls, body: Dict[str, Any]) -> "Attachment":
        return cls(body["attachment_id"], body["content_type"], int(body["size"]), body.get("file_name"))


@dataclass(frozen=True)
class DownloadLink:
    url: str  # absolute, or a path of the API's own (the development server's /_files/...)
    expires_in: int


def content_type_of(file_name: str) -> str:
    """A file's media type from its name (application/octet-stream when unknown)."""
    suffix = Path(file_name).suffix.lower()
    return _TYPES.get(suffix) or mimetypes.guess_type(file_name, strict=False)[0] or "application/octet-stream"


class Client:
    def __init__(self, api: str = DEFAULT_API, token: Optional[str] = None, *, timeout: float = 10.0,
                 connect_timeout: float = 3.0, retries: int = 4, backoff_cap: float = 30.0) -> None:
        self.api = api.rstrip("/")
        self.token = token
        self.retries = retries
        self.backoff_cap = backoff_cap
        self._timeout = httpx.Timeout(timeout, connect=connect_timeout)
        self._http = httpx.Client(base_url=self.api, timeout=self._timeout)

    def close(self) -> None:
        self._http.close()

    # ------------------------------------------------------------------ the endpoints

    def register(self, user_name: str, *, handle: Optional[str] = None, password: Optional[str] = None,
                 device_name: Optional[str] = None) -> SignedIn:
        """A new user, signed in on this device. `handle` lets others find the
        user; `password` (with a handle) lets the user sign in on other devices."""
        params = _given(user_name=user_name, handle=handle, password=password, device_name=device_name)
        return SignedIn.of(self._post("/register", params, safe=False))

    def login(self, handle: str, password: str, *, device_name: Optional[str] = None) -> SignedIn:
        """A new session with a handle and password; BadCredentials alike for
        an unknown handle and a wrong password."""
        params = _given(handle=handle.removeprefix("@"), password=password, device_name=device_name)
        return SignedIn.of(self._post("/login", params, safe=False))

    def link_code(self) -> LinkCode:
        """A one-time code, for a new device to sign in as this user with link()."""
        body = self._post("/link_code", {}, safe=False)
        return LinkCode(body["code"], body["expires_in"])

    def link(self, code: str, *, device_name: Optional[str] = None) -> SignedIn:
        """A new session with a code shown on a signed-in device (no token needed)."""
        return SignedIn.of(self._post("/link", _given(code=code, device_name=device_name), safe=False))

    def sessions(self) -> List[DeviceSession]:
        """The user's signed-in devices, oldest first."""
        body = self._post("/sessions", {})
        return [DeviceSession(s["session_id"], s["device_name"], s["created_at"], bool(s["current"]))
                for s in body["sessions"]]

    def logout(self, session_id: Optional[str] = None, *, everywhere: bool = False) -> int:
        """Sign out this device, one of the user's sessions, or all of them
        (`everywhere`); how many sessions were signed out. Repeated after a
        lost answer it signs out nothing more: it answers 0, or Unauthorized
        when the first attempt signed this device out."""
        params: Dict[str, Any] = _given(session_id=session_id)
        if everywhere:
            params["all"] = 1
        return int(self._post("/logout", params)["revoked"])

    def account(self) -> Account:
        """The caller's account: name, handle, whether it has a password, whether it sends read receipts."""
        return Account.of(self._post("/account", {}))

    def update_account(self, *, user_name: Optional[str] = None, handle: Optional[str] = None,
                       password: Optional[str] = None, current_password: Optional[str] = None,
                       read_receipts: Optional[bool] = None) -> User:
        """Change the name, handle or password (current_password is needed for
        the last two when the account has a password), or whether reading
        sends receipts (account() shows it). A new password signs out every
        other session."""
        params = _given(user_name=user_name, handle=handle, password=password, current_password=current_password,
                        read_receipts=None if read_receipts is None else int(read_receipts))
        return User.of(self._post("/update_account", params, safe=password is None))

    def delete_account(self, password: Optional[str] = None) -> bool:
        """Delete the account for good (its password, when it has one): every
        session is signed out; messages it sent stay with their recipients."""
        return bool(self._post("/delete_account", _given(password=password))["deleted"])

    def users(self, user_ids: Sequence[str], *, retries: Optional[int] = None) -> List[User]:
        """Names and handles of these users (any number: asked in batches of
        contract.MAX_USERS_PER_LOOKUP); unknown and deleted ones are left out."""
        unique = list(dict.fromkeys(user_ids))
        found: List[User] = []
        for start in range(0, len(unique), contract.MAX_USERS_PER_LOOKUP):
            batch = unique[start:start + contract.MAX_USERS_PER_LOOKUP]
            found += [User.of(u) for u in self._post("/users", {"user_ids": ",".join(batch)}, retries=retries)["users"]]
        return found

    def find_user(self, handle: str) -> User:
        """The user with this handle (a leading @ is allowed); UserNotFound when nobody has it."""
        return User.of(self._post("/find_user", {"handle": handle.removeprefix("@")}))

    def block(self, blocking_user_id: str, blocked_user_id: str, to_block: bool = True) -> bool:
        body = self._post("/block", {"blocking_user_id": blocking_user_id, "blocked_user_id": blocked_user_id,
                                     "to_block": int(to_block)})
        return bool(body["blocked"])

    def send(self, sending_user_id: str, receiving_user_id: str, message_text: Optional[str] = None, *,
             attachment_ids: Sequence[str] = (), client_message_id: Optional[str] = None,
             retries: Optional[int] = None) -> Sent:
        """A direct message: a text, uploaded files (attachment_ids, from upload()), or both."""
        params = _given(sending_user_id=sending_user_id, receiving_user_id=receiving_user_id,
                        message_text=message_text or None, attachment_ids=",".join(attachment_ids) or None)
        body = self._post("/send", params, key=client_message_id, safe=client_message_id is not None,
                          retries=retries)
        return Sent(body["message_id"], body["sent_at"], body["duplicate"])

    def create_group(self, group_name: str) -> str:
        return self._post("/create_group", {"group_name": group_name}, safe=False)["group_id"]

    def update_group(self, user_id: str, group_id: str, to_be_added: bool = True) -> bool:
        body = self._post("/update_group", {"user_id": user_id, "group_id": group_id,
                                            "to_be_added": int(to_be_added)})
        return bool(body["member"])

    def send_group(self, sending_user_id: str, group_id: str, message_text: Optional[str] = None, *,
                   attachment_ids: Sequence[str] = (), client_message_id: Optional[str] = None,
                   retries: Optional[int] = None) -> Sent:
        """A group message: a text, uploaded files (attachment_ids, from upload()), or both."""
        params = _given(sending_user_id=sending_user_id, group_id=group_id, message_text=message_text or None,
                        attachment_ids=",".join(attachment_ids) or None)
        body = self._post("/send_group", params, key=client_message_id, safe=client_message_id is not None,
                          retries=retries)
        return Sent(body["message_id"], body["sent_at"], body["duplicate"], body["recipients"])

    def read_messages(self, user_id: str, *, after: Optional[int] = None, min_timestamp: Optional[str] = None,
                      limit: Optional[int] = None, wait: Optional[int] = None) -> Page:
        params = _given(user_id=user_id, after=after, min_timestamp=min_timestamp, limit=limit, wait=wait)
        # A long-poll may take `wait` seconds before it answers.
        r = self._post_response("/read_messages", params, read_timeout=(self._timeout.read or 0) + (wait or 0))
        body = r.json()
        return Page(body["messages"], body["next_after"], body["has_more"], r.headers.get("X-Wait-Refused"))

    def sync(self, *, after: int = 0, limit: Optional[int] = None, wait: Optional[int] = None) -> SyncPage:
        """The user's stream after the cursor `after`: every event (messages,
        the user's own included, edits, deletions, reads, receipts, memberships)."""
        params = _given(after=after, limit=limit, wait=wait)
        r = self._post_response("/sync", params, read_timeout=(self._timeout.read or 0) + (wait or 0))
        body = r.json()
        return SyncPage(body["events"], body["next_after"], body["has_more"], r.headers.get("X-Wait-Refused"))

    def edit_message(self, message_id: str, message_text: str) -> Edited:
        """A new text for a message the user sent (within the edit window).
        Safe to repeat: a repeat sets the same text."""
        body = self._post("/edit_message", {"message_id": message_id, "message_text": message_text})
        return Edited(body["message_id"], body["edited_at"])

    def delete_message(self, message_id: str) -> bool:
        """Delete a message the user sent, for everyone who holds it. Idempotent."""
        return bool(self._post("/delete_message", {"message_id": message_id})["deleted"])

    def mark_read(self, message_id: str, *, with_user_id: Optional[str] = None,
                  group_id: Optional[str] = None) -> str:
        """The user has read the conversation (a direct one: with_user_id; a
        group: group_id) up to and including the message. A marker never moves
        back, so this is safe to repeat."""
        params = _given(with_user_id=with_user_id, group_id=group_id, message_id=message_id)
        return str(self._post("/mark_read", params)["message_id"])

    def conversations(self, *, limit: Optional[int] = None, before: Optional[int] = None) -> ConversationsPage:
        body = self._post("/conversations", _given(limit=limit, before=before))
        return ConversationsPage(body["conversations"], body.get("next_before"))

    def history(self, *, with_user_id: Optional[str] = None, group_id: Optional[str] = None,
                before_seq: Optional[int] = None, limit: Optional[int] = None) -> HistoryPage:
        params = _given(with_user_id=with_user_id, group_id=group_id, before_seq=before_seq, limit=limit)
        body = self._post("/history", params)
        return HistoryPage(body["messages"], body.get("next_before_seq"))

    def group_info(self, group_id: str, *, after_user_id: Optional[str] = None,
                   limit: Optional[int] = None) -> GroupInfo:
        body = self._post("/group_info", _given(group_id=group_id, after_user_id=after_user_id, limit=limit))
        members = [User(m["user_id"], m["user_name"], m.get("handle")) for m in body["members"]]
        return GroupInfo(body["group_id"], body["group_name"], int(body["member_count"]), members,
                         body.get("next_after_user_id"))

    def connect_ticket(self, user_id: str) -> Ticket:
        body = self._post("/connect_ticket", {"user_id": user_id})
        return Ticket(body["ticket"], body["expires_in"], body["url"])

    # ------------------------------------------------------------------ attachments

    def upload_url(self, content_type: str, size: int, *, file_name: Optional[str] = None,
                   retries: Optional[int] = None) -> UploadForm:
        """A form to upload one file of `size` bytes (at most) and this type.
        BadRequest for a type the server does not take, PayloadTooLarge for a
        size past its limit."""
        body = self._post("/upload_url", _given(content_type=content_type, size=size, file_name=file_name),
                          retries=retries)
        return UploadForm(body["attachment_id"], body["upload"]["url"], dict(body["upload"]["fields"]),
                          int(body["expires_in"]))

    def upload(self, path: Union[str, "os.PathLike[str]"], *, content_type: Optional[str] = None,
               file_name: Optional[str] = None, progress: Optional[Progress] = None,
               retries: Optional[int] = None) -> Attachment:
        """Upload a file from disk, streamed (never read whole into memory);
        what to pass to send()'s attachment_ids. The type comes from the file
        name unless given; the name shown is the file's unless given."""
        path = Path(path)
        shown = file_name or path.name
        kind = content_type or content_type_of(shown)
        with open(path, "rb") as file:
            size = os.fstat(file.fileno()).st_size
            form = self.upload_url(kind, size, file_name=shown[:contract.MAX_FILE_NAME_CHARS] or None,
                                   retries=retries)
            self.post_form(form, file, content_type=kind, file_name=shown, progress=progress, retries=retries)
        return Attachment(form.attachment_id, kind, size, shown)

    def post_form(self, form: UploadForm, file: IO[bytes], *, content_type: str, file_name: str,
                  progress: Optional[Progress] = None, retries: Optional[int] = None) -> None:
        """POST the form's fields and then the file (an open binary file, read
        from its start in chunks) to storage; retried as a safe call."""
        reading = _Reading(file, progress)
        attempts = (self.retries if retries is None else retries) + 1
        for attempt in range(attempts):
            try:  # a file object: httpx streams it (see the module's doc)
                r = self._http.post(self.storage_url(form.url), data=form.fields,
                                    files={"file": (file_name, cast(IO[bytes], reading), content_type)})
            except httpx.TransportError as exc:
                error: ApiError = Offline(f"cannot reach {_origin(form.url, self.api)} ({type(exc).__name__})")
            else:
                if r.status_code < 300:
                    return
                error = _storage_error(r)
            if attempt == attempts - 1 or not error.retryable(True) or (error.retry_after or 0) > self.backoff_cap:
                raise error
            self._sleep(attempt, error.retry_after)

    def download_url(self, attachment_id: str) -> DownloadLink:
        """A short-lived URL of a file a message the user holds carries (AttachmentNotFound else)."""
        body = self._post("/download_url", {"attachment_id": attachment_id})
        return DownloadLink(body["url"], int(body["expires_in"]))

    def download(self, attachment_id: str, path: Union[str, "os.PathLike[str]"], *,
                 progress: Optional[Progress] = None) -> int:
        """Download a file a message carries into `path`, streamed (written as
        it comes, into a temporary file beside `path` that then replaces it:
        `path` is never left half written); how many bytes."""
        path = Path(path)
        link = self.download_url(attachment_id)
        partial = path.with_name(f".{path.name}.{os.getpid()}.part")
        try:
            with self._http.stream("GET", self.storage_url(link.url)) as r:
                if r.status_code >= 300:
                    r.read()
                    raise _storage_error(r)
                total = int(r.headers.get("Content-Length") or 0)
                done = 0
                with open(os.open(partial, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600), "wb") as out:
                    for chunk in r.iter_bytes(CHUNK_BYTES):
                        out.write(chunk)
                        done += len(chunk)
                        if progress is not None:
                            progress(done, total)
            os.replace(partial, path)
        except httpx.TransportError as exc:
            raise Offline(f"cannot reach {_origin(link.url, self.api)} ({type(exc).__name__})") from None
        finally:
            partial.unlink(missing_ok=True)
        return done

    def storage_url(self, url: str) -> str:
        """An upload or download URL as given (S3's), or a path of the API's own resolved against its base URL."""
        return url if re.match(r"https?://", url) else f"{self.api}/{url.lstrip('/')}"

    def health(self) -> Dict[str, Any]:
        try:
            r = self._http.get("/health")
        except httpx.TransportError as exc:
            raise Offline(f"cannot reach {self.api} ({type(exc).__name__})") from None
        return r.json()

    # ------------------------------------------------------------------ one call

    def _post(self, path: str, params: Dict[str, Any], *, key: Optional[str] = None, safe: bool = True,
              retries: Optional[int] = None, read_timeout: Optional[float] = None) -> Dict[str, Any]:
        return self._post_response(path, params, key=key, safe=safe, retries=retries, read_timeout=read_timeout).json()

    def _post_response(self, path: str, params: Dict[str, Any], *, key: Optional[str] = None, safe: bool = True,
                       retries: Optional[int] = None, read_timeout: Optional[float] = None) -> httpx.Response:
        """POST with the parameters as a JSON body, retried as ApiError.retryable
        says. `safe`: repeating the call cannot do it twice (reads, idempotent
        writes, sends with a key)."""
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        if key is not None:
            headers["Idempotency-Key"] = key
        timeout = self._timeout if read_timeout is None else httpx.Timeout(read_timeout, connect=self._timeout.connect)
        attempts = (self.retries if retries is None else retries) + 1
        for attempt in range(attempts):
            last = attempt == attempts - 1
            try:
                r = self._http.post(path, json=params, headers=headers, timeout=timeout)
            except httpx.TransportError as exc:
                error: ApiError = Offline(f"cannot reach {self.api} ({type(exc).__name__})")
            else:
                if r.status_code < 400:
                    return r
                error = _error(r)
            if last or not error.retryable(safe) or (error.retry_after or 0) > self.backoff_cap:
                raise error
            self._sleep(attempt, error.retry_after)
        raise AssertionError("unreachable")

    def _sleep(self, attempt: int, retry_after: Optional[float]) -> None:
        time.sleep(backoff(attempt, retry_after, base=0.25, cap=self.backoff_cap))


def backoff(attempt: int, retry_after: Optional[float] = None, *, base: float = 0.5, cap: float = 30.0) -> float:
    """Seconds before retry `attempt` (0, 1, ...): capped exponential with jitter,
    so many clients do not come back at once, and never sooner than Retry-After."""
    delay = min(cap, base * 2 ** attempt) * random.uniform(0.5, 1.0)
    return min(cap, max(delay, retry_after or 0))


class _Reading:
    """A file read for an upload, reporting progress; its length is the
    file's (fileno), so the request has a Content-Length."""

    def __init__(self, file: IO[bytes], progress: Optional[Progress]) -> None:
        self._file, self._progress = file, progress
        self._total = os.fstat(file.fileno()).st_size
        self._done = 0

    def fileno(self) -> int:
        return self._file.fileno()

    def seek(self, offset: int, whence: int = 0) -> int:
        at = self._file.seek(offset, whence)
        self._done = at
        return at

    def tell(self) -> int:
        return self._file.tell()

    def read(self, size: int = -1) -> bytes:
        chunk = self._file.read(size)
        self._done += len(chunk)
        if self._progress is not None and chunk:
            self._progress(self._done, self._total)
        return chunk


def _origin(url: str, api: str) -> str:
    """Where an upload or download goes, for an error: storage's host, or the API."""
    if re.match(r"https?://", url):
        return httpx.URL(url).host or url
    return api


def _storage_error(r: httpx.Response) -> ApiError:
    """Storage's refusal: S3's XML <Error> (Code, Message), the development
    server's JSON envelope, or just the status. Its 500 and 503 (S3's
    InternalError, SlowDown) are worth another try; nothing else is."""
    retry = IF_IDEMPOTENT if r.status_code in (500, *GATEWAY_STATUSES) else NEVER
    text = r.text
    if text.lstrip().startswith("<"):
        code = re.search(r"<Code>([^<]*)</Code>", text)
        message = re.search(r"<Message>([^<]*)</Message>", text)
        return ApiError(r.status_code, code.group(1) if code else f"HTTP{r.status_code}",
                        message.group(1) if message else r.reason_phrase, retry=retry)
    error = _error(r)
    error.retry = retry
    return error


def _given(**params: Any) -> Dict[str, Any]:
    """The parameters that are given (None: left out)."""
    return {k: v for k, v in params.items() if v is not None}


def _error(r: httpx.Response) -> ApiError:
    try:
        body = r.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    envelope = body.get("Code") if isinstance(body.get("Code"), str) and body["Code"] else None
    code = envelope or f"HTTP{r.status_code}"
    message = body.get("Message") or body.get("message") or r.reason_phrase  # API Gateway's own: "message"
    retry_after = r.headers.get("Retry-After")
    seconds = float(retry_after) if retry_after and retry_after.isdigit() else None
    return _BY_CODE.get(code, ApiError)(r.status_code, code, message, retry_after=seconds, body=body,
                                        retry=retry_class(r.status_code, envelope))
