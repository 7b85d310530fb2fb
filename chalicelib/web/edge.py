"""Routing: every route for every method (405 with Allow for the wrong one),
a 404 for unknown paths, the caller's token, the web client's static files,
and the wrapping of WebSocket handlers and scheduled jobs, each run within
its invocation's time budget with its errors answered by envelope.py."""
from __future__ import annotations

import functools
import threading
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Sequence

from chalice import Chalice, Response

from .. import checks, timebudget
from ..auth import Identity
from ..errors import BadRequest, DomainError, Forbidden, MethodNotAllowed, NotFound
from ..params import RequestParams
from ..usecases.results import Result
from . import envelope
from .requestlog import log_job, log_request

# Chalice answers 415 itself for other media types; a missing one counts as JSON.
BODY_TYPES = ["application/json", "application/x-www-form-urlencoded"]
# Every method API Gateway routes: a route answers 405 for all but its own,
# so a wrong method never reaches API Gateway's "Missing Authentication Token".
ALL_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
# What every answer carries: its type is never sniffed, no other page may
# frame it, and (unless it says otherwise, as the static files do) no cache
# keeps it: answers carry tokens, tickets and message text.
EVERY_ANSWER = {"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY", "Cache-Control": "no-store",
                "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'"}
# The web client's page: its own scripts and styles only, and connections to
# the API and to the app's own WebSocket origin, nowhere else.
PAGE_POLICY = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:{files}; "
               "media-src 'self'{files}; connect-src 'self'{websocket}{files}; base-uri 'none'; form-action 'none';"
               " frame-ancestors 'none'")
STATIC_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml", ".json": "application/json"}


class Call:
    """What a route sees of its request: parameters, headers, the caller."""

    def __init__(self, request: Any, identity: Optional[Identity]) -> None:
        self._request = request
        self.identity = identity  # None: a public route, or auth is off
        # Parsed for every route, whether it reads them or not: a bad body is a 400 on each.
        query = request.query_params
        self.params = RequestParams.from_request({name: query.getlist(name) for name in query} if query else {},
                                                 request.raw_body, request.headers.get("content-type"))

    @property
    def caller(self) -> Optional[str]:
        """The token's user (None: a public route, or auth is off)."""
        return self.identity.user_id if self.identity else None

    def acting_user(self) -> str:
        """The user the stream's endpoints act as: the token's (a `user_id`
        given must be it); without tokens (AUTH_MODE=none), `user_id`, required."""
        given = self.params.optional_id("user_id")
        if self.caller is None:
            if given is None:
                raise BadRequest("user_id", "required: this server runs without tokens (AUTH_MODE=none)")
            return given
        if given is not None and given != self.caller:
            raise Forbidden("user_id must be the user the token was issued to")
        return self.caller

    def header(self, name: str) -> Optional[str]:
        return self._request.headers.get(name)

    @property
    def source_ip(self) -> str:
        return self._request.context.get("identity", {}).get("sourceIp", "unknown")


class App(Chalice):
    """Chalice, with the invocation's context kept per thread. Lambda runs
    one request per container at a time, but `make run` and `chalice local`
    run each request in its own thread, and Chalice keeps the context on the
    app: a long-poll would take a later request's id and time budget.
    (Both local servers already make `current_request` per thread.)"""

    _invocation = threading.local()

    @property
    def lambda_context(self) -> Any:
        return getattr(self._invocation, "lambda_context", None)

    @lambda_context.setter
    def lambda_context(self, value: Any) -> None:
        self._invocation.lambda_context = value


class Edge:
    """Registers the app's routes. Each view takes a Call and returns its
    result; the edge authenticates, sets the status and maps errors."""

    def __init__(self, app: Any, authenticate: Callable[[Optional[str]], Optional[Identity]]) -> None:
        self._app = app
        self._authenticate = authenticate
        self.operations: Dict[str, str] = {}  # path -> the one method it serves
        app.middleware("http")(functools.partial(log_request, app))
        app.middleware("http")(_every_answer)

    def route(
        self, path: str, *, method: str = "POST", auth: bool = True
    ) -> Callable[[Callable[[Call], Result]], Callable[[], Response]]:
        """Serve `path` with `method`; auth=False for the public routes (no token)."""

        def register(view: Callable[[Call], Result]) -> Callable[[], Response]:
            @functools.wraps(view)
            def handler(**_path_params: Any) -> Response:
                options = self._methods(path, method)
                if options is not None:
                    return options
                request = self._app.current_request
                caller = self._authenticate(request.headers.get("authorization")) if auth else None
                return envelope.success(view(Call(request, caller)))

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

    def static_files(self, folder: Path, *, websocket_url: Callable[[], Optional[str]],
                     file_origins: Callable[[], Sequence[str]] = lambda: ()) -> None:
        """The web client: GET / is folder/index.html, GET /static/<name> the
        other files of the folder (no sub-folders, nothing else). The page's
        Content-Security-Policy lets it connect to `websocket_url`'s origin,
        and upload to, show pictures and play media from `file_origins`
        (the attachments bucket; none when files are served by the app)."""
        files = {p.name: p for p in folder.iterdir() if p.is_file()}

        def serve(name: str) -> Response:
            path = files.get(name)
            if path is None:
                raise NotFound(f"no file /static/{name}")
            headers: envelope.Headers = {"Content-Type": STATIC_TYPES.get(path.suffix, "application/octet-stream"),
                                         "Cache-Control": "no-cache"}
            if path.suffix == ".html":
                url = websocket_url()
                origin = "/".join(url.split("/")[:3]) if url else ""
                storage = "".join(f" {o}" for o in file_origins())
                headers["Content-Security-Policy"] = PAGE_POLICY.format(websocket=f" {origin}" if origin else "",
                                                                        files=storage)
            return Response(body=path.read_text(encoding="utf-8"), status_code=200, headers=headers)

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

    def job(self, name: str, run: Callable[[], Result], context: Any) -> Dict[str, Any]:
        """A scheduled job's invocation: its time budget from the Lambda
        context, one log line with its result, errors logged like a request's."""
        timebudget.begin(context)
        try:
            body = run().body()
            log_job(name, body)
            return body
        except Exception as exc:
            envelope.log_failure(envelope.request_id_of(context), exc)
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
    checks.clear()
    try:
        response = run()
        checks.flush()  # nothing is answered before the request's checks pass
        return response
    except DomainError as error:
        return envelope.error(_checked(error))
    except Exception as exc:  # noqa: BLE001 - the edge of the app
        return envelope.internal_error(context, exc)
    finally:
        checks.clear()
        timebudget.end()


def _checked(error: DomainError) -> DomainError:
    """A refused session or an exhausted rate limit answers before any other
    error a request met (a signed-out device learns nothing else)."""
    try:
        checks.flush()
    except DomainError as refused:
        return refused
    return error


def _every_answer(request: Any, get_response: Callable[[Any], Response]) -> Response:
    """Chalice HTTP middleware: EVERY_ANSWER's headers, unless an answer set its own."""
    response = get_response(request)
    for name, value in EVERY_ANSWER.items():
        response.headers.setdefault(name, value)
    return response
