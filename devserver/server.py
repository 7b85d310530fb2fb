"""One asyncio HTTP server (aiohttp) in front of Chalice's LocalGateway, the
same gateway `chalice local` uses, so routes, events and responses are the
ones `chalice local` produces, and beside it API Gateway's WebSocket API
(websocket.py) on the same port. Each request runs in a thread of its own,
as under `chalice local`, so a slow request (a long-poll) never holds up
another one.

There is no reloader: `chalice local`'s reloader restarts the server on any
file change under the project, and the embedded SQLite file lives there, so
every write restarted it. Restart `make run` after changing code.
"""
from __future__ import annotations

import asyncio
import base64
import errno
import json
import logging
import os
import socket
import sys
import uuid
from typing import Any, Dict, Optional
from urllib.parse import parse_qs, urlparse

from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_server import Server
from chalice.cli.factory import CLIFactory
from chalice.local import (
    CustomLocalChalice,
    LambdaEventConverter,
    LocalChalice,
    LocalGateway,
    LocalGatewayException,
    MatchResult,
    RouteMatcher,
)

from chalicelib.settings import PROJECT_ROOT

from . import uploads
from .threads import in_thread
from .websocket import PATH, WebSocketBridge

MAX_BODY_BYTES = 10 * 1024 * 1024  # API Gateway's payload limit


class PortInUse(Exception):
    """Another process is listening on the address the server was asked for."""


def _bind(host: str, port: int) -> socket.socket:
    """A listening socket on (host, port), or PortInUse with one clear line."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # not SO_REUSEPORT: a second server must fail
    try:
        sock.bind((host, port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise PortInUse(
                f"port {port} on {host} is already in use (another `make run`?); "
                f"stop that process or choose another port: make run PORT={port + 1}"
            ) from None
        raise
    sock.setblocking(False)
    return sock


def load_app(stage: str) -> tuple[Any, Any]:
    """The Chalice app and its config for `stage`, as `chalice local` loads them:
    the stage's environment variables are applied before app.py is imported."""
    factory = CLIFactory(project_dir=str(PROJECT_ROOT), environ=os.environ)
    config = factory.create_config_obj(chalice_stage_name=stage)
    app = config.chalice_app
    # `chalice local`'s own patch: current_request becomes thread-local.
    CustomLocalChalice.__bases__ = (LocalChalice, app.__class__)
    app.__class__ = CustomLocalChalice
    return app, config


class GreedyRouteMatcher(RouteMatcher):
    """Chalice's matcher, plus API Gateway's greedy `{name+}` for paths of
    more than one segment (so the app's catch-all answers every unknown path)."""

    def match_route(self, url: str) -> MatchResult:
        try:
            return super().match_route(url)
        except ValueError:
            parsed = urlparse(url)
            for route in self.route_urls:
                if route.endswith("+}"):
                    prefix, _, name = route.rpartition("/{")
                    if parsed.path.startswith(prefix + "/"):
                        rest = parsed.path[len(prefix) + 1:]
                        return MatchResult(route, {name[:-2]: rest}, parse_qs(parsed.query, keep_blank_values=True))
            raise


class HttpBridge:
    """aiohttp request -> LocalGateway.handle_request -> aiohttp response."""

    def __init__(self, app: Any, config: Any) -> None:
        self._gateway = LocalGateway(app, config)
        self._gateway.event_converter = LambdaEventConverter(GreedyRouteMatcher(list(app.routes)), app.api.binary_types)

    def _handle(self, method: str, path: str, headers: Dict[str, str], body: Optional[bytes]) -> Dict[str, Any]:
        try:
            return self._gateway.handle_request(method=method, path=path, headers=headers, body=body)
        except LocalGatewayException as exc:
            return {"statusCode": exc.CODE, "headers": dict(exc.headers), "multiValueHeaders": {}, "body": exc.body}

    async def __call__(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        response = await in_thread(self._handle, request.method, request.raw_path, dict(request.headers), body or None)
        headers: Dict[str, Any] = dict(response.get("headers") or {})
        content = response.get("body")
        if response.get("isBase64Encoded"):
            content = base64.b64decode(content or "")
        elif isinstance(content, str):
            content = content.encode("utf-8")
        out = web.Response(status=response["statusCode"], body=content or b"")
        out.headers.setdefault("Content-Type", headers.pop("Content-Type", "application/json"))
        for name, value in headers.items():
            out.headers[name] = value
        for name, values in (response.get("multiValueHeaders") or {}).items():
            for value in values:
                out.headers.add(name, value)
        return out


def build(app: Any, config: Any, host: str, port: int) -> web.Application:
    webapp = web.Application(client_max_size=MAX_BODY_BYTES)
    WebSocketBridge(app, host, port).routes(webapp)  # before the catch-all
    uploads.routes(webapp)
    webapp.router.add_route("*", "/{tail:.*}", HttpBridge(app, config))
    return webapp


def _local_environment(host: str, port: int) -> str:
    """What the app needs to push locally; the developer's own settings win."""
    reachable = "127.0.0.1" if host in ("0.0.0.0", "::") else (f"[{host}]" if ":" in host else host)
    url = os.environ.setdefault("WEBSOCKET_URL", f"ws://{reachable}:{port}{PATH}")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    os.environ.setdefault("AWS_REGION", os.environ["AWS_DEFAULT_REGION"])
    # boto3 signs its @connections calls; these sign the local ones when nothing else would.
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "devserver")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "devserver-local-only")
    return url


class _RequestLines(logging.Formatter):
    """The request log's line, for a terminal: what a developer reads of it
    (method, route, status, time, round trips), not the Embedded Metric
    Format envelope CloudWatch needs. Other lines pass as they are."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        if record.name != "chalicelib.requests" or not text.startswith('{"_aws"'):
            return text
        r = json.loads(text)
        cache = f" cache {r['Cache']}" if "Cache" in r else ""
        return (f"{r['method']} {r['Route']} {r['status']} {r['Latency']:.1f} ms  db {r['DbStatements']} in "
                f"{r['DbRoundTrips']}, redis {r['RedisRoundTrips']}{cache}  {r['request_id']}")


def serve(*, host: str, port: int, stage: str) -> None:
    sock = _bind(host, port)  # first, so a taken port fails before anything is loaded
    # As under `chalice local` (and Lambda): the app's log lines on stdout.
    logging.basicConfig(stream=sys.stdout, level=logging.INFO, format="%(message)s")
    for handler in logging.getLogger().handlers:
        handler.setFormatter(_RequestLines("%(message)s"))
    logging.getLogger("botocore").setLevel(logging.WARNING)  # "Found credentials..." on every start
    websocket_url = _local_environment(host, port)
    app, config = load_app(stage)
    # Fail fast: a setting the app cannot run with stops the server now, with
    # one line naming it (ConfigError never quotes the value), not every request later.
    from chalicelib import wiring

    wiring.service()
    shown = f"[{host}]" if ":" in host else host
    print(f"Serving the API on http://{shown}:{port} and its WebSocket on {websocket_url} "
          f"(stage {stage}; Ctrl-C stops)", flush=True)
    try:
        asyncio.run(_serve(build(app, config, host, port), sock))
    except (web.GracefulExit, KeyboardInterrupt):
        pass


async def _serve(webapp: web.Application, sock: socket.socket) -> None:
    # access_log=None: an access log line would carry the query string, and
    # with it message text (and tickets); the app logs one line per request without it.
    runner = web.AppRunner(webapp, access_log=None, handle_signals=True, shutdown_timeout=1)
    await runner.setup()
    assert runner.server is not None
    runner.server.__class__ = _EnvelopeServer  # every connection's handler answers malformed requests our way
    await web.SockSite(runner, sock).start()
    try:
        await asyncio.Event().wait()  # until a signal (GracefulExit)
    finally:
        await runner.cleanup()


class _EnvelopeHandler(RequestHandler):
    """aiohttp's protocol handler, but a request it cannot parse (a NUL in a
    header, a request line over 8,190 bytes...) gets the app's error
    envelope and one request log line, as API Gateway would answer it; aiohttp's
    own answer is text/plain and its log line quotes the raw request, which
    carries tokens and message text."""

    def handle_error(self, request: Any, status: int = 500, exc: Optional[BaseException] = None,
                     message: Optional[str] = None) -> web.StreamResponse:
        from chalicelib.web.requestlog import log_malformed  # after serve() set up logging: see requestlog

        code = "InternalServerError" if status >= 500 else "PayloadTooLarge" if status == 413 else "BadRequest"
        request_id = str(uuid.uuid4())
        text = (f"internal error, request id {request_id}" if status >= 500
                else "request: malformed HTTP (its request line or a header could not be read)")
        log_malformed(status=status, request_id=request_id, error=type(exc).__name__ if exc else None)
        response = web.json_response({"Code": code, "Message": text}, status=status)
        response.force_close()
        return response


class _EnvelopeServer(Server):
    def __call__(self) -> RequestHandler:
        return _EnvelopeHandler(self, loop=self._loop, **self._kwargs)
