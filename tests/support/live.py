"""Clients of the development server's HTTP API and WebSocket, for tests
over real sockets: the calls as a person's client makes them, and a
WebSocket client in a thread of its own (the tests are synchronous)."""
from __future__ import annotations

import asyncio
import json
import threading
from typing import Any, Dict, Optional

import aiohttp

from tests.support.devserver import call

FRAME_TIMEOUT = 5.0  # how long a test waits for a frame it expects



def register(base: str, name: str) -> Dict[str, str]:
    status, user = call(base, "/register", user_name=name)
    assert status == 201, user
    return user


def send(base: str, sender: Dict[str, str], recipient: Dict[str, str], text: str) -> Dict[str, Any]:
    status, body = call(base, "/send", sender["token"], sending_user_id=sender["user_id"],
                        receiving_user_id=recipient["user_id"], message_text=text)
    assert status == 201, body
    return body


def read(base: str, user: Dict[str, str], **params: Any) -> Dict[str, Any]:
    status, body = call(base, "/read_messages", user["token"], user_id=user["user_id"], **params)
    assert status == 200, body
    return body


def ticket(base: str, user: Dict[str, str]) -> Dict[str, Any]:
    status, body = call(base, "/connect_ticket", user["token"], user_id=user["user_id"])
    assert status == 200, body
    return body


class Socket:
    """A WebSocket client in a thread of its own."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.frames: "asyncio.Queue[str]"
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._session: Optional[aiohttp.ClientSession] = None
        self._ws: Any = None

    def _run(self, coro: Any, timeout: float = 10) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def connect(self) -> "Socket":
        async def connect() -> None:
            self.frames = asyncio.Queue()
            self._session = aiohttp.ClientSession()
            self._ws = await self._session.ws_connect(self.url)
            self._loop.create_task(self._pump())

        self._run(connect())
        return self

    async def _pump(self) -> None:
        async for frame in self._ws:
            if frame.type == aiohttp.WSMsgType.TEXT:
                await self.frames.put(frame.data)

    def next(self, timeout: float = FRAME_TIMEOUT) -> Dict[str, Any]:
        return json.loads(self._run(asyncio.wait_for(self.frames.get(), timeout), timeout + 1))

    def nothing_within(self, seconds: float) -> bool:
        try:
            self.next(seconds)
            return False
        except (asyncio.TimeoutError, TimeoutError):
            return True

    def closed(self) -> bool:
        """Whether the server closed the connection (or it was closed here)."""
        return self._ws is None or self._ws.closed

    def send(self, text: str) -> None:
        self._run(self._ws.send_str(text))

    def close(self) -> None:
        async def close() -> None:
            if self._ws is not None:
                await self._ws.close()
            if self._session is not None:
                await self._session.close()

        self._run(close())
        self._loop.call_soon_threadsafe(self._loop.stop)


def refused_status(url: str) -> Optional[int]:
    """The HTTP status a refused handshake answers; None if it connected."""
    async def attempt() -> Optional[int]:
        async with aiohttp.ClientSession() as session:
            try:
                async with session.ws_connect(url):
                    return None
            except aiohttp.WSServerHandshakeError as e:
                return e.status

    return asyncio.run(attempt())
