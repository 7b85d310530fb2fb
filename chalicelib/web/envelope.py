"""What an answer looks like: a result's status and headers, a domain
error's envelope (`{"Code", "Message"}` with the code's status from the
contract), and the 500, which carries only a request id while its log line
names the error's types and code locations, never a value."""
from __future__ import annotations

import logging
import traceback
import uuid
from typing import Any, Dict, List, Optional, Union

from chalice import Response

from ..contract import STATUS
from ..errors import DomainError, MethodNotAllowed, ServiceUnavailable, Unauthorized
from ..settings import ConfigError
from ..usecases.results import Events, GroupCreated, HealthReport, Page, Registered, Result, Sent

log = logging.getLogger("chalicelib.web")

REALM = 'Bearer realm="messaging"'
Headers = Dict[str, Union[str, List[str]]]  # as chalice.Response takes them


def success(result: Result) -> Response:
    return Response(body=result.body(), status_code=_status(result), headers=_headers(result))


def _status(result: Result) -> int:
    if isinstance(result, Registered):
        return 201 if result.new_account else 200
    if isinstance(result, GroupCreated):
        return 201
    if isinstance(result, Sent):
        return 200 if result.duplicate else 201  # an idempotent replay delivered nothing new
    if isinstance(result, HealthReport):
        return 200 if result.ok else 503  # a cache that is down is reported, not an error
    return 200


def _headers(result: Result) -> Headers:
    if isinstance(result, (Page, Events)):
        headers: Headers = {"X-Cache": result.cache}
        if result.wait_refused:
            headers["X-Wait-Refused"] = result.wait_refused
        return headers
    if isinstance(result, HealthReport) and not result.ok:
        return {"Retry-After": str(ServiceUnavailable.retry_after_seconds)}
    return {}


def error(error: DomainError) -> Response:
    headers: Headers = {}
    if error.retry_after_seconds is not None:
        headers["Retry-After"] = str(error.retry_after_seconds)
    if isinstance(error, Unauthorized):
        # RFC 6750: the scheme to use; error="invalid_token" when one was given.
        headers["WWW-Authenticate"] = REALM + (', error="invalid_token"' if error.token_given else "")
    if isinstance(error, MethodNotAllowed):
        headers["Allow"] = error.allowed
    return Response(
        body={"Code": error.code, "Message": error.message, **error.details},
        status_code=STATUS[error.code],
        headers=headers,
    )


def internal_error(context: Any, exc: BaseException) -> Response:
    """The answer to anything a handler did not expect, logged without values."""
    request_id = request_id_of(context)
    log_failure(request_id, exc)
    return Response(body={"Code": "InternalServerError", "Message": f"internal error, request id {request_id}"},
                    status_code=STATUS["InternalServerError"])


def request_id_of(context: Any) -> str:
    return getattr(context, "aws_request_id", None) or str(uuid.uuid4())


def log_failure(request_id: str, exc: BaseException) -> None:
    if isinstance(exc, ConfigError):
        # A setting the app cannot run with: say which and why (the message
        # names the variable or secret, never its value).
        log.error("configuration error request_id=%s: %s", request_id, exc)
        return
    # Exception messages can quote SQL values (message text, names): log the
    # types, driver error codes and code locations only.
    chain = []
    current: Optional[BaseException] = exc
    while current is not None:
        code = current.args[0] if current.args and isinstance(current.args[0], int) else None
        chain.append(type(current).__name__ + (f"({code})" if code is not None else ""))
        where = [f"{f.filename.rsplit('/', 1)[-1]}:{f.lineno}:{f.name}"
                 for f in traceback.extract_tb(current.__traceback__)]
        chain.append(" <- ".join(reversed(where)))
        current = current.__cause__ or current.__context__
    log.error("unhandled error request_id=%s %s", request_id, " | ".join(chain))
