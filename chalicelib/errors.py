"""Domain errors. Each carries the stable code of the API contract; the HTTP
status that goes with a code is decided only at the edge (web.py)."""
from __future__ import annotations

from typing import Optional


class DomainError(Exception):
    code = "DomainError"
    retry_after_seconds: Optional[int] = None  # when set, the client may retry after this long

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequest(DomainError):
    code = "BadRequest"

    def __init__(self, parameter: str, problem: str) -> None:
        super().__init__(f"{parameter}: {problem}")
        self.parameter = parameter


class Unauthorized(DomainError):
    code = "Unauthorized"


class Forbidden(DomainError):
    code = "Forbidden"


class Blocked(DomainError):
    code = "Blocked"


class NotAMember(DomainError):
    code = "NotAMember"


class UserNotFound(DomainError):
    code = "UserNotFound"


class GroupNotFound(DomainError):
    code = "GroupNotFound"


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
