"""An HTTP server of the test's own in place of the API, or in front of it,
that answers what a test scripts and records every exchange on the wire:

- in place of the API (no `upstream`): every request gets `default`, e.g. the
  envelope of a 500 (the real app answers 500 only on a bug);
- in front of the API: requests to `paths` get the `script`'s answers in
  order, each after forwarding the request (the API did it; the client is told
  otherwise, as when API Gateway times out) unless `forward=False`; every
  other request is forwarded and the API's answer relayed, so the log shows
  the API's own statuses and Retry-After (a recording proxy)."""
from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Optional, Tuple

from tests.support.stand_in import QuietHandler, StandIn


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any  # JSON
    headers: Dict[str, str] = field(default_factory=dict)
    forward: bool = True  # in front of the API: forward the request first (it is done), then answer this


@dataclass(frozen=True)
class Exchange:
    path: str
    status: int
    retry_after: Optional[str]  # the answer's Retry-After header
    received: float  # time.monotonic() when the request arrived
    answered: float  # time.monotonic() just before the answer was written
    scripted: bool  # answered from the script or `default`, not by the API


class ScriptedApi(StandIn):
    def __init__(self, *, upstream: Optional[str] = None, script: Iterable[Answer] = (),
                 paths: Tuple[str, ...] = ("/send", "/send_group"), default: Optional[Answer] = None) -> None:
        if upstream is None and default is None:
            raise ValueError("in place of the API, say what it answers (default)")
        self.upstream = upstream.rstrip("/") if upstream else None
        self.script: List[Answer] = list(script)
        self.log: List[Exchange] = []
        lock = threading.Lock()
        outer = self

        class Handler(QuietHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802
                received = time.monotonic()
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with lock:
                    path = self.path.split("?", 1)[0]
                    answer = outer.script.pop(0) if outer.script and path in paths else None
                if answer is None and outer.upstream is None:
                    answer = default
                if answer is None or answer.forward and outer.upstream is not None:
                    status, data, headers = outer._forward(self, body)
                if answer is not None:
                    status, data, headers = answer.status, json.dumps(answer.body).encode(), answer.headers
                answered = time.monotonic()
                with lock:
                    outer.log.append(Exchange(path, status, headers.get("Retry-After"), received, answered,
                                              answer is not None))
                self.answer(status, data, "application/json", headers)

        super().__init__(Handler)
        self.start()

    def _forward(self, handler: QuietHandler, body: bytes) -> Tuple[int, bytes, Dict[str, str]]:
        headers = {k: v for k, v in handler.headers.items() if k.lower() not in ("host", "content-length")}
        request = urllib.request.Request(self.upstream + handler.path, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=60) as r:
                status, data, got = r.status, r.read(), r.headers
        except urllib.error.HTTPError as e:
            status, data, got = e.code, e.read(), e.headers
        return status, data, {k: got[k] for k in ("Retry-After",) if got.get(k)}

    def sent(self) -> List[Exchange]:
        """The exchanges of sends (/send, /send_group), in order."""
        return [e for e in self.log if e.path in ("/send", "/send_group")]
