"""An HTTP proxy in front of the API that makes sends look failed after they
succeeded: it forwards a send to the server (which commits it), then answers
the client 503 with Retry-After, or drops the connection, for the first
`failures` sends: a 503 storm with lost acknowledgements."""
from __future__ import annotations

import threading
import urllib.error
import urllib.request
from typing import List

from tests.support.stand_in import QuietHandler, StandIn


class FlakyProxy(StandIn):
    def __init__(self, upstream: str, failures: int) -> None:
        self.upstream = upstream.rstrip("/")
        self.failures = failures
        self.log: List[str] = []  # what happened to each request: "forwarded", "503", "dropped"
        lock = threading.Lock()
        outer = self

        class Handler(QuietHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                request = urllib.request.Request(outer.upstream + self.path, data=body, headers=headers, method="POST")
                try:
                    with urllib.request.urlopen(request, timeout=30) as r:
                        status, data, kind = r.status, r.read(), r.headers.get("Content-Type", "application/json")
                except urllib.error.HTTPError as e:
                    status, data, kind = e.code, e.read(), e.headers.get("Content-Type", "application/json")
                sending = self.path.startswith(("/send", "/send_group"))
                with lock:
                    fail = sending and outer.failures > 0
                    if fail:
                        outer.failures -= 1
                    outcome = ("dropped" if outer.failures % 2 else "503") if fail else "forwarded"
                    outer.log.append(outcome)
                if outcome == "dropped":  # committed upstream; the client never hears back
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                if outcome == "503":
                    status, kind = 503, "application/json"
                    data = b'{"Code":"ServiceUnavailable","Message":"the database connection was lost"}'
                self.answer(status, data, kind, {"Retry-After": "1"} if status == 503 else None)

        super().__init__(Handler)
        self.start()
