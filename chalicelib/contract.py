"""What crosses the boundary to clients, written once: every error code with
its status and whether a client may retry it, and the limits a client must
respect. The server takes its statuses and limits from here; docs/api.md's
error table, openapi.yaml's error codes, the Python client's
messaging_client/contract.py and the web client's static/contract.js are
generated from it (`make contract`; tests/unit/test_contract.py fails when
one of them is stale)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Tuple

# Whether a client may send the same request again after this answer.
ALWAYS = "always"  # nothing was done (refused before any work): retry after Retry-After
IF_IDEMPOTENT = "if_idempotent"  # the outcome may be unknown: retry only what is safe to repeat
NEVER = "never"  # the request itself is wrong (or hit a bug): the same request fails the same way


@dataclass(frozen=True)
class Code:
    name: str
    status: int
    retry: str
    when: str  # for docs/api.md
    headers: Tuple[str, ...] = ()


CODES: Tuple[Code, ...] = (
    Code("BadRequest", 400, NEVER,
         "a parameter is missing, malformed, out of range or given twice with different values; the message names it"),
    Code("Unauthorized", 401, NEVER, "no valid bearer token (or its session was signed out)", ("WWW-Authenticate",)),
    Code("BadCredentials", 401, NEVER,
         "`/login`: unknown handle or wrong password (the same answer); a bad, used or expired link code;"
         " a wrong `current_password` or `password`"),
    Code("Forbidden", 403, NEVER,
         "the acting user is not the token's user; an edit or deletion of another user's message"),
    Code("Blocked", 403, NEVER, "the recipient blocks the sender"),
    Code("NotAMember", 403, NEVER, "a group send or `/group_info` by a non-member"),
    Code("NotFound", 404, NEVER, "no route serves this path"),
    Code("UserNotFound", 404, NEVER, "an unknown user id"),
    Code("GroupNotFound", 404, NEVER, "an unknown group id"),
    Code("AttachmentNotFound", 404, NEVER, "`/download_url` of an attachment no message in the user's stream carries"),
    Code("MessageNotFound", 404, NEVER,
         "an unknown message id, or one not in the user's stream or not in the conversation named"),
    Code("MethodNotAllowed", 405, NEVER, "the path answers another method", ("Allow",)),
    Code("CursorAhead", 409, NEVER, "`after` is beyond the user's newest seq (`newest_seq` in the answer)"),
    Code("GroupFull", 409, NEVER, "the group is at `MAX_GROUP_MEMBERS`"),
    Code("IdempotencyConflict", 409, NEVER, "the key was used for another text or recipient"),
    Code("AttachmentNotReady", 409, NEVER,
         "an `attachment_ids` entry that is not the sender's, not uploaded yet, not of the declared type or size,"
         " or already attached"),
    Code("HandleTaken", 409, NEVER, "another account has this handle"),
    Code("EditWindowClosed", 409, NEVER, "`/edit_message` more than `EDIT_WINDOW_HOURS` after the message was sent"),
    Code("MessageDeleted", 409, NEVER, "`/edit_message` of a deleted message"),
    Code("PayloadTooLarge", 413, NEVER, "the body is over 65,536 bytes; `/upload_url` of a `size` over"
                                        " `MAX_ATTACHMENT_BYTES`"),
    Code("UnsupportedMediaType", 415, NEVER, "a body that is neither JSON nor a form"),
    Code("RateLimited", 429, ALWAYS, "over a rate limit", ("Retry-After",)),
    Code("InternalServerError", 500, NEVER, "a bug; the message carries only a request id"),
    Code("ServiceUnavailable", 503, IF_IDEMPOTENT,
         "the database cannot be reached, or the connection was lost during a commit", ("Retry-After",)),
)
BY_NAME: Dict[str, Code] = {code.name: code for code in CODES}
STATUS: Dict[str, int] = {code.name: code.status for code in CODES}

# Limits a client builds its requests to.
MAX_WAIT_SECONDS = 20  # a long-poll's longest wait (`wait`; LONG_POLL_MAX_SECONDS may lower it)
MAX_MESSAGE_CHARS = 4096
MAX_USER_NAME_CHARS = 64
MAX_GROUP_NAME_CHARS = 128
MIN_HANDLE_CHARS, MAX_HANDLE_CHARS = 3, 32  # [a-z][a-z0-9_]*, any case accepted, kept in lower case
MIN_PASSWORD_CHARS, MAX_PASSWORD_CHARS = 8, 256
MAX_DEVICE_NAME_CHARS = 64
MAX_USERS_PER_LOOKUP = 100  # /users' user_ids
LINK_CODE_SECONDS = 300
DEFAULT_PAGE = 100
MAX_PAGE = 1000
DEFAULT_CONVERSATIONS, MAX_CONVERSATIONS = 50, 100  # /conversations' limit
DEFAULT_HISTORY, MAX_HISTORY = 50, 200  # /history's limit
DEFAULT_MEMBERS, MAX_MEMBERS = 100, 500  # /group_info's limit
MAX_ATTACHMENTS_PER_MESSAGE = 10
MAX_FILE_NAME_CHARS = 255
UPLOAD_URL_SECONDS = 600  # how long an upload form is good for
DOWNLOAD_URL_SECONDS = 300  # how long a download URL is good for
MAX_UNREAD_COUNTED = 999  # /conversations counts unread messages up to this (a client shows "999+")
MAX_BODY_BYTES = 64 * 1024
# A long-poll answered at once with X-Wait-Refused (the user holds the most
# waiting reads): how long a client pauses before it reads again.
WAIT_REFUSED_PAUSE_SECONDS = 5
LIMITS: Dict[str, int] = {
    "MAX_WAIT_SECONDS": MAX_WAIT_SECONDS,
    "MAX_MESSAGE_CHARS": MAX_MESSAGE_CHARS,
    "MAX_USER_NAME_CHARS": MAX_USER_NAME_CHARS,
    "MAX_GROUP_NAME_CHARS": MAX_GROUP_NAME_CHARS,
    "MIN_HANDLE_CHARS": MIN_HANDLE_CHARS,
    "MAX_HANDLE_CHARS": MAX_HANDLE_CHARS,
    "MIN_PASSWORD_CHARS": MIN_PASSWORD_CHARS,
    "MAX_PASSWORD_CHARS": MAX_PASSWORD_CHARS,
    "MAX_DEVICE_NAME_CHARS": MAX_DEVICE_NAME_CHARS,
    "MAX_USERS_PER_LOOKUP": MAX_USERS_PER_LOOKUP,
    "LINK_CODE_SECONDS": LINK_CODE_SECONDS,
    "DEFAULT_PAGE": DEFAULT_PAGE,
    "MAX_PAGE": MAX_PAGE,
    "DEFAULT_CONVERSATIONS": DEFAULT_CONVERSATIONS,
    "MAX_CONVERSATIONS": MAX_CONVERSATIONS,
    "DEFAULT_HISTORY": DEFAULT_HISTORY,
    "MAX_HISTORY": MAX_HISTORY,
    "DEFAULT_MEMBERS": DEFAULT_MEMBERS,
    "MAX_MEMBERS": MAX_MEMBERS,
    "MAX_UNREAD_COUNTED": MAX_UNREAD_COUNTED,
    "MAX_ATTACHMENTS_PER_MESSAGE": MAX_ATTACHMENTS_PER_MESSAGE,
    "MAX_FILE_NAME_CHARS": MAX_FILE_NAME_CHARS,
    "UPLOAD_URL_SECONDS": UPLOAD_URL_SECONDS,
    "DOWNLOAD_URL_SECONDS": DOWNLOAD_URL_SECONDS,
    "MAX_BODY_BYTES": MAX_BODY_BYTES,
    "WAIT_REFUSED_PAUSE_SECONDS": WAIT_REFUSED_PAUSE_SECONDS,
}
