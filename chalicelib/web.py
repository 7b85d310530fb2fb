"""The HTTP edge: routing, request parameters, the caller's token, JSON
responses and the error envelope. The only module that knows status codes."""
from __future__ import annotations

import functools
import json
import logging
import sys
import threading
import time
import traceback
import uuid
from pathlib import Path
from typing import Any, Callable, Dict, Optional

from chalice import Chalice, Response

from . import timebudget
from .metering import meter
from .contract import STATUS
from .errors import DomainError, MethodNotAllowed, NotFound, ServiceUnavailable, Unauthorized
from .params import RequestParams
from .settings import ConfigError
from .usecases.results import GroupCreated, HealthReport, Page, Registered, Sent

log = logging.getLogger(__name__)
request_log = logging.getLogger("chalicelib.requests")
request_log.setLevel(logging.INFO)
if not logging.getLogger().handlers:  # Lambda's runtime and the dev server bring their own handler
    _stderr = logging.StreamHandler(sys.stderr)
    _stderr.setFormatter(logging.Formatter("%(message)s"))
    logging.getLogger("chalicelib").addHandler(_stderr)

# Chalice answers 415 itself for other media types; a missing one counts as JSON.
BODY_TYPES = ["application/json", "application/x-www-form-urlencoded"]
# Every method API Gateway routes: a route answers 405 for all but its own,
# so a wrong method never reaches API Gateway's "Missing Authentication Token".
ALL_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
REALM = 'Bearer realm="messaging"'
STATIC_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml", ".json": "application/json"}


class Call:
    """What a route sees of its request: parameters, headers, the caller."""

    def __init__(self, request: Any, caller: Optional[str]) -> None:
        self._request = request
        self.caller = caller

    @functools.cached_property
    def params(self) -> RequestParams:
        query = self._request.query_params
        return RequestParams.from_request(
            {name: query.getlist(name) for name in query} if query else {},
            self._request.raw_body,
            self._request.headers.get("content-type"),
        )

    def header(self, name: str) -> Optional[str]:
        return self._request.headers.get(name)

    @property
    def source_ip(self) -> str:
        return self._request.context.get("identity", {}).get("sourceIp", "unknown")


def success_status(result: Any) -> int:
    """The status of a use case's result."""
    if isinstance(result, (Registered, GroupCreated)):
        return 201
    if isinstance(result, Sent):
        return 200 if result.duplicate else 201  # an idempotent replay delivered nothing new
    if isinstance(result, HealthReport):
        return 200 if result.ok else 503  # a cache that is down is reported, not an error
    return 200


def success_headers(result: Any) -> Dict[str, str]:
    if isinstance(result, Page):
        return {"X-Cache": result.cache}
    if isinstance(result, HealthReport) and not result.ok:
        return {"Retry-After": str(ServiceUnavailable.retry_after_seconds)}
    return {}


class App(Chalice):
    """Chalice, with the invocation's context kept per thread. Lambda runs
    one request per container at a time, but `make run` and `chalice local`
    run each request in its own thread, and Chalice keeps the context on the
    app: a long-poll would take a later request's id and time budget.
    (Both local servers already make `current_request` per thread.)"""

    _invocation = threading.local()

    @property  # type: ignore[override]
    def lambda_context(self) -> Any:
        return getattr(self._invocation, "lambda_context", None)

    @lambda_context.setter
    def lambda_context(self, value: Any) -> None:
        self._invocation.lambda_context = value


class Edge:
    """Registers the app's routes. Each view takes a Call and returns its
    result; the edge authenticates, sets the status and maps errors."""

    def __init__(self, app: Any, authenticate: Callable[[Optional[str]], Optional[str]]) -> None:
        self._app = app
        self._authenticate = authenticate
        self.operations: Dict[str, str] = {}  # path -> the one method it serves
        app.middleware("http")(functools.partial(_log_request, app))

    def route(
        self, path: str, *, method: str = "POST", auth: bool = True
    ) -> Callable[[Callable[[Call], Any]], Callable[[], Response]]:
        """Serve `path` with `method`; auth=False for the two public routes."""

        def register(view: Callable[[Call], Any]) -> Callable[[], Response]:
            @functools.wraps(view)
            def handler(**_path_params: Any) -> Response:
                options = self._methods(path, method)
                if options is not None:
                    return options
                request = self._app.current_request
                caller = self._authenticate(request.headers.get("authorization")) if auth else None
                result = view(Call(request, caller))
                return Response(body=result.body(), status_code=success_status(result), headers=success_headers(result))

            self.operations[path] = method
            guarded = self._guarded(handler)
            self._app.route(path, methods=ALL_METHODS, content_types=BODY_TYPES)(guarded)
            return guarded

        return register

    def websocket(self, register: Callable[..., Any]) -> Callable[[Callable[[Any], Any]], Any]:
        """A WebSocket handler (`register` is app.on_ws_connect() & co.),
        answered as a route is: its domain errors become the status API
        Gateway answers the client (a refused $connect)."""

        def decorate(view: Callable[[Any], Any]) -> Any:
            @functools.wraps(view)
            def handler(event: Any) -> Response:
                def run() -> Response:
                    view(event)
                    return Response(body="", status_code=200)

                return _answer(getattr(event, "context", None), run)

            return register(handler)

        return decorate

    def static_files(self, folder: Path) -> None:
        """The web client: GET / is folder/index.html, GET /static/<name> the
        other files of the folder (no sub-folders, nothing else)."""
        files = {p.name: p for p in folder.iterdir() if p.is_file()}

        def serve(name: str) -> Response:
            path = files.get(name)
            if path is None:
                raise NotFound(f"no file /static/{name}")
            kind = STATIC_TYPES.get(path.suffix, "application/octet-stream")
            return Response(body=path.read_text(encoding="utf-8"), status_code=200,
                            headers={"Content-Type": kind, "Cache-Control": "no-cache",
                                     "X-Content-Type-Options": "nosniff"})

        @self._guarded
        def index() -> Response:
            return self._methods("/", "GET") or serve("index.html")

        @self._guarded
        def asset(name: str) -> Response:
            return self._methods("/static/{name}", "GET") or serve(name)

        self._app.route("/", methods=ALL_METHODS, content_types=["*/*"])(index)
        self._app.route("/static/{name}", methods=ALL_METHODS, content_types=["*/*"])(asset)
        self.operations["/"] = self.operations["/static/{name}"] = "GET"

    def _methods(self, path: str, method: str) -> Optional[Response]:
        """None when the request's method is `method` (GET: or HEAD); the
        answer to an OPTIONS; MethodNotAllowed for any other method."""
        allowed = f"{method}, HEAD" if method == "GET" else method
        given = self._app.current_request.method
        if given == "OPTIONS":
            return Response(body="", status_code=204, headers={"Allow": allowed})
        if given not in allowed.split(", "):
            raise MethodNotAllowed(f"{path} allows {allowed}, not {given}", allowed=allowed)
        return None

    def job(self, name: str, run: Callable[[], Any], context: Any) -> Dict[str, Any]:
        """A scheduled job's invocation: its time budget from the Lambda
        context, one log line with its result, errors logged like a request's."""
        timebudget.begin(context)
        try:
            body = run().body()
            # The request log's logger: its level is set, so the result reaches
            # CloudWatch where the root logger's default would drop INFO.
            request_log.info("job %s: %s", name, json.dumps(body))
            return body
        except Exception as exc:
            _log_failure(_request_id(context), exc)
            raise  # a failed invocation: Lambda's Errors metric and its alarm
        finally:
            timebudget.end()

    def unknown_routes(self) -> None:
        """A 404 in the error envelope for every path no route serves."""

        @self._guarded
        def not_found(**_path_params: Any) -> Response:
            request = self._app.current_request
            path = request.to_original_event().get("path") or request.context.get("path", "")
            raise NotFound(f"no route {request.method} {path}")

        self._app.route("/{proxy+}", methods=ALL_METHODS, content_types=["*/*"])(not_found)
        # Chalice would pass the greedy parameter as a keyword argument named
        # "proxy+", which API Gateway never sends: the view takes none.
        for entry in self._app.routes["/{proxy+}"].values():
            entry.view_args = []

    def _guarded(self, handler: Callable[..., Response]) -> Callable[..., Response]:
        @functools.wraps(handler)
        def wrapper(*args: Any, **kwargs: Any) -> Response:
            return _answer(self._app.lambda_context, lambda: handler(*args, **kwargs))

        return wrapper


def _answer(context: Any, run: Callable[[], Response]) -> Response:
    """Run a handler within its invocation's time budget: domain errors
    become the error envelope, anything else a 500 that carries only a
    request id."""
    timebudget.begin(context)
    try:
        return run()
    except DomainError as error:
        return error_response(error)
    except Exception as exc:  # noqa: BLE001 - the edge of the app
        request_id = _request_id(context)
        _log_failure(request_id, exc)
        return _internal_error(request_id)
    finally:
        timebudget.end()


def error_response(error: DomainError) -> Response:
    headers: Dict[str, str] = {}
    if error.retry_after_seconds is not None:
        headers["Retry-After"] = str(error.retry_after_seconds)
    if isinstance(error, Unauthorized):
        # RFC 6750: the scheme to use; error="invalid_token" when one was given.
        headers["WWW-Authenticate"] = REALM + (', error="invalid_token"' if error.token_given else "")
    if isinstance(error, MethodNotAllowed):
        headers["Allow"] = error.allowed
    return Response(
        body={"Code": error.code, "Message": error.message, **error.details},
        status_code=STATUS.get(error.code, 500),
        headers=headers,
    )


def _internal_error(request_id: str) -> Response:
    return Response(body={"Code": "InternalServerError", "Message": f"internal error, request id {request_id}"},
                    status_code=500)


def _request_id(context: Any) -> str:
    return getattr(context, "aws_request_id", None) or str(uuid.uuid4())


def _log_failure(request_id: str, exc: BaseException) -> None:
    if isinstance(exc, ConfigError):
        # A setting the app cannot run with: say which and why (the message
        # names the variable or secret, never its value).
        log.error("configuration error request_id=%s: %s", request_id, exc)
    else:
        _log_unexpected(request_id, exc)


def _log_unexpected(request_id: str, exc: Optional[BaseException]) -> None:
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


METRICS_NAMESPACE = "Messaging"
_METRICS = [{"Name": "Latency", "Unit": "Milliseconds"}, {"Name": "DbStatements", "Unit": "Count"},
            {"Name": "DbRoundTrips", "Unit": "Count"}, {"Name": "RedisRoundTrips", "Unit": "Count"}]
_DIMENSIONS = [["Service"], ["Service", "Route"], ["Service", "Route", "StatusClass"]]


def _log_request(app: Any, request: Any, get_response: Callable[[Any], Any]) -> Any:
    """One JSON line per request: what happened and how long it took, in
    CloudWatch's Embedded Metric Format, so the line is also the metrics
    (latency, statements and round trips by route and status class, and by
    cache path for reads) with no API call. Never parameters, bodies or
    headers (tokens and message text live there)."""
    m = meter()
    started, statements, round_trips, redis = time.perf_counter(), m.db_statements, m.db_round_trips, m.redis_round_trips
    response = get_response(request)
    cache = response.headers.get("X-Cache")
    context = getattr(app, "lambda_context", None)
    line = {
        "_aws": {
            "Timestamp": int(time.time() * 1000),
            "CloudWatchMetrics": [{"Namespace": METRICS_NAMESPACE,
                                   "Dimensions": _DIMENSIONS + ([["Service", "Cache"]] if cache else []),
                                   "Metrics": _METRICS}],
        },
        "Service": getattr(context, "function_name", None) or app.app_name,
        "Route": request.path,
        "StatusClass": f"{response.status_code // 100}xx",
        "Latency": round((time.perf_counter() - started) * 1000, 3),
        "DbStatements": m.db_statements - statements,
        "DbRoundTrips": m.db_round_trips - round_trips,
        "RedisRoundTrips": m.redis_round_trips - redis,
        "request_id": _request_id(context),
        "method": request.method,
        "status": response.status_code,
    }
    if cache:
        line["Cache"] = cache
    request_log.info(json.dumps(line))
    return response
