"""What the suite's HTTP stand-ins (Secrets Manager, the Lambda Invoke API,
the flaky proxy) share: a ThreadingHTTPServer on a free loopback port, served
from a daemon thread, and a handler that logs nothing and answers in one call."""
from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Dict, Optional, Type


class QuietHandler(BaseHTTPRequestHandler):
    def answer(self, status: int, data: bytes, content_type: str = "application/json",
               headers: Optional[Dict[str, str]] = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args) -> None:  # quiet
        pass


class StandIn:
    """Serves `handler` once started; `url` is known from the start."""

    def __init__(self, handler: Type[BaseHTTPRequestHandler]) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> "StandIn":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
