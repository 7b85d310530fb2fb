"""A stand-in for the Lambda service's Invoke API on a local port, speaking
its real wire format (POST /2015-03-31/functions/{name}/invocations, with
X-Amz-Invocation-Type: Event answered 202 at once), so the app's own boto3
code invokes through it. Each invocation runs the handler registered for the
function's name, as Lambda would, in a thread of its own. Point boto3 at it
with AWS_ENDPOINT_URL_LAMBDA."""
from __future__ import annotations

import json
import re
import threading
from typing import Any, Callable, Dict, List

from tests.support.stand_in import QuietHandler, StandIn

_PATH = re.compile(r"^/2015-03-31/functions/([^/]+)/invocations$")


class LambdaService(StandIn):
    def __init__(self, handlers: Dict[str, Callable[[Any, Any], Any]]) -> None:
        self.handlers = handlers
        self.invocations: List[str] = []
        self.done = threading.Condition()
        self.finished = 0
        outer = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:  # noqa: N802
                match = _PATH.match(self.path.split("?")[0])
                payload = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                name = match.group(1) if match else ""
                if name not in outer.handlers:
                    self._answer(404, {"Type": "User", "message": f"Function not found: {name}"},
                                 {"x-amzn-ErrorType": "ResourceNotFoundException"})
                    return
                outer.invocations.append(name)
                if self.headers.get("X-Amz-Invocation-Type") == "Event":
                    threading.Thread(target=outer._run, args=(name, payload), daemon=True).start()
                    self._answer(202, None, {})
                else:
                    self._answer(200, outer._run(name, payload), {})

            def _answer(self, status: int, body: Any, headers: Dict[str, str]) -> None:
                self.answer(status, b"" if body is None else json.dumps(body).encode(), headers=headers)

        super().__init__(Handler)
        self.start()

    def _run(self, name: str, payload: Any) -> Any:
        try:
            return self.handlers[name](payload, None)
        finally:
            with self.done:
                self.finished += 1
                self.done.notify_all()

    def wait_finished(self, count: int, timeout: float = 10) -> None:
        with self.done:
            assert self.done.wait_for(lambda: self.finished >= count, timeout), (self.finished, self.invocations)
