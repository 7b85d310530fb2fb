"""Domain errors. Each carries the stable code of the API contract; the HTTP
status that goes with a code is decided only at the edge (web.py)."""
from __future__ import annotations

from typing import Any, Dict, Optional


class DomainError(Exception):
    code = "DomainError"
    retry_after_seconds: Optional[int] = None  # when set, the client may retry after this long

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    @property
    def details(self) -> Dict[str, Any]:
        """Machine-readable fields the envelope carries beside Code and Message."""
        return {}


class BadRequest(DomainError):
    code = "BadRequest"

    def __init__(self, parameter: str, problem: str) -> None:
        super().__init__(f"{parameter}: {problem}")
        self.parameter = parameter


class Unauthorized(DomainError):
    code = "Unauthorized"

    def __init__(self, message: str, *, token_given: bool = True) -> None:
        super().__init__(message)
        self.token_given = token_given  # False: no credentials at all (RFC 6750 sends no error code)


class BadCredentials(DomainError):
    """The same for an unknown handle and a wrong password, so an answer
    never tells whether a handle exists."""

    code = "BadCredentials"


class HandleTaken(DomainError):
    code = "HandleTaken"


class Forbidden(DomainError):
    code = "Forbidden"


class Blocked(DomainError):
    code = "Blocked"


class NotAMember(DomainError):
    code = "NotAMember"


class NotFound(DomainError):
    """No route serves this path."""

    code = "NotFound"


class MethodNotAllowed(DomainError):
    code = "MethodNotAllowed"

    def __init__(self, message: str, *, allowed: str) -> None:
        super().__init__(message)
        self.allowed = allowed


class CursorAhead(DomainError):
    """`after` is beyond the user's newest seq. Seqs never go down, so such a
    cursor is a client's mistake (or a restore): it names the newest seq."""

    code = "CursorAhead"

    def __init__(self, *, after: int, newest_seq: int) -> None:
        super().__init__(
            f"after: {after} is beyond this user's newest seq {newest_seq}; seqs never go down, "
            f"so read on from after={newest_seq} or less"
        )
        self.newest_seq = newest_seq

    @property
    def details(self) -> Dict[str, Any]:
        return {"newest_seq": self.newest_seq}


class UserNotFound(DomainError):
    code = "UserNotFound"


class GroupNotFound(DomainError):
    code = "GroupNotFound"


class AttachmentNotReady(DomainError):
    code = "AttachmentNotReady"


class AttachmentNotFound(DomainError):
    code = "AttachmentNotFound"


class MessageNotFound(DomainError):
    code = "MessageNotFound"


class EditWindowClosed(DomainError):
    code = "EditWindowClosed"


class MessageDeleted(DomainError):
    code = "MessageDeleted"


class GroupFull(DomainError):
    code = "GroupFull"


class IdempotencyConflict(DomainError):
    code = "IdempotencyConflict"


class PayloadTooLarge(DomainError):
    code = "PayloadTooLarge"


class RateLimited(DomainError):
    code = "RateLimited"

    def __init__(self, message: str, *, retry_after_seconds: int) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


class UnsupportedMediaType(DomainError):
    code = "UnsupportedMediaType"


class ServiceUnavailable(DomainError):
    """A dependency the request needs (the database) cannot be reached."""

    code = "ServiceUnavailable"
    retry_after_seconds = 2
