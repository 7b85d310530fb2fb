"""API Gateway's WebSocket API, for `make run`: `chalice local` has none.

Clients connect to ws://<host>:<port>/ws (the WEBSOCKET_URL the app hands
out with its connect tickets). Each connect, message and disconnect runs the
app's own websocket handlers (app.ws_connect & co., found through
app.websocket_handlers as Lambda would call them) with API Gateway-shaped
events, in a thread of its own. The app pushes through the @connections
management API on its real wire format, as boto3's apigatewaymanagementapi
speaks it: POST (send), GET (info) and DELETE (close) on
/ws/@connections/{connection_id}, 410 GoneException for a connection that
is not (or no longer) open. The framing is aiohttp's.
"""
from __future__ import annotations

import base64
import importlib
import json
import os
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Dict, Optional

from aiohttp import WSMsgType, web

from .threads import in_thread

PATH = "/ws"
STAGE = "ws"
API_ID = "devserver"


@dataclass
class Connection:
    socket: web.WebSocketResponse
    source_ip: str
    user_agent: str
    connected_at: float = field(default_factory=time.time)
    last_active_at: float = field(default_factory=time.time)


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class _Context:
    """The Lambda context's parts the app reads; a handler gets 29 s, as API
    Gateway allows an integration."""

    function_name = "devserver-websocket"
    memory_limit_in_mb = 512

    def __init__(self) -> None:
        self.aws_request_id = str(uuid.uuid4())
        self._deadline = time.monotonic() + 29

    def get_remaining_time_in_millis(self) -> int:
        return int((self._deadline - time.monotonic()) * 1000)


class WebSocketBridge:
    def __init__(self, app: Any, host: str, port: int) -> None:
        self._app = app
        self._domain = f"{host}:{port}"
        self.connections: Dict[str, Connection] = {}

    # ---------------------------------------------------------------- the app's handlers

    def _handler(self, route_key: str) -> Optional[Any]:
        config = self._app.websocket_handlers.get(route_key)
        if config is None:
            return None
        module, _, name = config.handler_string.rpartition(".")
        return getattr(importlib.import_module(module), name)

    def _event(self, route_key: str, event_type: str, connection_id: str, request: web.Request,
               body: Optional[str] = None) -> Dict[str, Any]:
        now = time.time()
        context = {
            "routeKey": route_key, "eventType": event_type, "messageDirection": "IN",
            "stage": STAGE, "apiId": API_ID, "domainName": self._domain, "connectionId": connection_id,
            "requestId": str(uuid.uuid4()), "extendedRequestId": str(uuid.uuid4()),
            "requestTimeEpoch": int(now * 1000),
            "connectedAt": int(self.connections[connection_id].connected_at * 1000)
            if connection_id in self.connections else int(now * 1000),
            "identity": {"sourceIp": request.remote or "127.0.0.1", "userAgent": request.headers.get("User-Agent")},
        }
        event: Dict[str, Any] = {"requestContext": context, "isBase64Encoded": False}
        if event_type == "CONNECT":
            query = {k: request.query.getall(k) for k in request.query}
            event["headers"] = dict(request.headers)
            event["multiValueHeaders"] = {k: request.headers.getall(k) for k in request.headers}
            event["queryStringParameters"] = {k: v[-1] for k, v in query.items()} or None
            event["multiValueQueryStringParameters"] = query or None
        if event_type == "MESSAGE":
            context["messageId"] = base64.b64encode(os.urandom(9)).decode()
            event["body"] = body
        if event_type == "DISCONNECT":
            context["disconnectStatusCode"] = 1005
            context["disconnectReason"] = ""
        return event

    async def _run(self, route_key: str, event: Dict[str, Any]) -> Dict[str, Any]:
        handler = self._handler(route_key)
        if handler is None:
            return {"statusCode": 200}
        return await in_thread(handler, event, _Context()) or {"statusCode": 200}

    # ---------------------------------------------------------------- clients

    async def connect(self, request: web.Request) -> web.StreamResponse:
        connection_id = base64.b64encode(os.urandom(12)).decode()  # the shape of API Gateway's ids
        result = await self._run("$connect", self._event("$connect", "CONNECT", connection_id, request))
        status = int(result.get("statusCode", 200))
        if status != 200:  # a refused $connect: the handshake fails with its status
            return web.Response(status=status, body=result.get("body") or "", content_type="application/json")
        socket = web.WebSocketResponse(autoping=True)
        await socket.prepare(request)
        self.connections[connection_id] = Connection(socket, request.remote or "127.0.0.1",
                                                     request.headers.get("User-Agent", ""))
        try:
            async for frame in socket:
                if frame.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                    continue
                self.connections[connection_id].last_active_at = time.time()
                body = frame.data if frame.type == WSMsgType.TEXT else frame.data.decode("utf-8", "replace")
                route = self._route(body)
                await self._run(route, self._event(route, "MESSAGE", connection_id, request, body))
        finally:
            await self._run("$disconnect", self._event("$disconnect", "DISCONNECT", connection_id, request))
            self.connections.pop(connection_id, None)
        return socket

    def _route(self, body: str) -> str:
        """Chalice's route selection expression, $request.body.action. As on
        API Gateway, a frame never selects $connect or $disconnect: those run
        only when a connection opens and closes."""
        try:
            action = json.loads(body).get("action")
        except (ValueError, AttributeError):
            action = None
        routable = isinstance(action, str) and not action.startswith("$") and action in self._app.websocket_handlers
        return action if routable else "$default"

    # ---------------------------------------------------------------- @connections

    @staticmethod
    def _gone() -> web.Response:
        return web.Response(status=410, body=b'{"message":null}', content_type="application/json",
                            headers={"x-amzn-ErrorType": "GoneException"})

    @staticmethod
    def _signed(request: web.Request) -> bool:
        # The management API takes only SigV4-signed calls (IAM): check the shape.
        return request.headers.get("Authorization", "").startswith("AWS4-HMAC-SHA256 Credential=")

    async def manage(self, request: web.Request) -> web.StreamResponse:
        if not self._signed(request):
            return web.Response(status=403, body=b'{"message":"Missing Authentication Token"}',
                                content_type="application/json",
                                headers={"x-amzn-ErrorType": "MissingAuthenticationTokenException"})
        connection = self.connections.get(request.match_info["connection_id"])
        if connection is None or connection.socket.closed:
            return self._gone()
        if request.method == "POST":
            data = await request.read()
            try:
                await connection.socket.send_str(data.decode("utf-8"))
            except (ConnectionError, RuntimeError):
                return self._gone()
            return web.Response(status=200)
        if request.method == "GET":
            info = {"ConnectedAt": _iso(connection.connected_at), "LastActiveAt": _iso(connection.last_active_at),
                    "Identity": {"SourceIp": connection.source_ip, "UserAgent": connection.user_agent}}
            return web.json_response(info)
        await connection.socket.close()
        return web.Response(status=204)

    def routes(self, webapp: web.Application) -> None:
        webapp.router.add_get(PATH, self.connect)
        for method in ("POST", "GET", "DELETE"):
            webapp.router.add_route(method, PATH + "/@connections/{connection_id}", self.manage)
