"""The HTTP edge: request parameters in, JSON responses and the error
envelope out. The only module that knows status codes."""
from __future__ import annotations

import functools
import json
import logging
import sys
import time
import traceback
import uuid
from typing import Any, Callable, Dict

from chalice import Response

from .db import statements_sent
from .errors import DomainError
from .params import RequestParams

log = logging.getLogger(__name__)
request_log = logging.getLogger("chalicelib.requests")
request_log.setLevel(logging.INFO)
if not logging.getLogger().handlers:  # chalice local: Lambda's runtime brings its own handler
    _stderr = logging.StreamHandler(sys.stderr)
    _stderr.setFormatter(logging.Formatter("%(message)s"))
    logging.getLogger("chalicelib").addHandler(_stderr)

STATUS: Dict[str, int] = {
    "BadRequest": 400,
    "Unauthorized": 401,
    "Forbidden": 403,
    "Blocked": 403,
    "NotAMember": 403,
    "UserNotFound": 404,
    "GroupNotFound": 404,
    "GroupFull": 409,
    "IdempotencyConflict": 409,
    "PayloadTooLarge": 413,
    "UnsupportedMediaType": 415,
    "RateLimited": 429,
    "ServiceUnavailable": 503,
}
# Chalice answers 415 itself for other media types; a missing one counts as JSON.
BODY_TYPES = ["application/json", "application/x-www-form-urlencoded"]


def params(request: Any) -> RequestParams:
    query = request.query_params
    return RequestParams.from_request(
        {name: query.getlist(name) for name in query} if query else {},
        request.raw_body,
        request.headers.get("content-type"),
    )


def created(result: Dict[str, Any]) -> Response:
    """201 for a new message, 200 for an idempotent replay."""
    return Response(body=result, status_code=200 if result.get("duplicate") else 201)


def error_response(error: DomainError) -> Response:
    headers = {} if error.retry_after_seconds is None else {"Retry-After": str(error.retry_after_seconds)}
    return Response(
        body={"Code": error.code, "Message": error.message}, status_code=STATUS.get(error.code, 500), headers=headers
    )


def _request_id(app: Any) -> str:
    context = getattr(app, "lambda_context", None)
    return getattr(context, "aws_request_id", None) or str(uuid.uuid4())


def _log_unexpected(request_id: str, exc: BaseException) -> None:
    # Exception messages can quote SQL values (message text, names): log the
    # types, driver error codes and code locations only.
    chain = []
    while exc is not None:
        code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
        chain.append(type(exc).__name__ + (f"({code})" if code is not None else ""))
        where = [f"{f.filename.rsplit('/', 1)[-1]}:{f.lineno}:{f.name}" for f in traceback.extract_tb(exc.__traceback__)]
        chain.append(" <- ".join(reversed(where)))
        exc = exc.__cause__ or exc.__context__
    log.error("unhandled error request_id=%s %s", request_id, " | ".join(chain))


def handled(app: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Turn domain errors into the error envelope and anything else into a
    500 that carries only a request id."""

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return view(*args, **kwargs)
            except DomainError as error:
                return error_response(error)
            except Exception as exc:  # noqa: BLE001 - the edge of the app
                request_id = _request_id(app)
                _log_unexpected(request_id, exc)
                return Response(
                    body={"Code": "InternalServerError", "Message": f"internal error, request id {request_id}"},
                    status_code=500,
                )

        return wrapper

    return decorate


def log_request(app: Any, request: Any, get_response: Callable[[Any], Any]) -> Any:
    """One JSON line per request: what happened and how long it took. Never
    parameters, bodies or headers (tokens and message text live there)."""
    started, statements = time.perf_counter(), statements_sent()
    response = get_response(request)
    request_log.info(json.dumps({
        "request_id": _request_id(app),
        "method": request.method,
        "route": request.path,
        "status": response.status_code,
        "latency_ms": round((time.perf_counter() - started) * 1000, 3),
        "cache": response.headers.get("X-Cache"),
        "db_statements": statements_sent() - statements,
    }))
    return response
