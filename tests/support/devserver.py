"""`python -m devserver` (what `make run` runs) as a process of the test's own."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Callable, Dict, NamedTuple, Optional, Tuple

from chalicelib.settings import PROJECT_ROOT
from tests.support.servers import free_port

STARTUP_DEADLINE_SECONDS = 30
# Variables of the developer's shell that would change what the server does.
_CLEARED_PREFIXES = ("REDIS_", "RATE_LIMIT_", "AUTH_", "DB_", "CACHE_", "LONG_POLL_", "MAX_GROUP_")


def server_environment(**settings: str) -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_CLEARED_PREFIXES) and k != "DATABASE_URL"}
    env.update(settings)
    return env


def call(base: str, path: str, token: Optional[str] = None, **params: Any) -> Tuple[int, Any]:
    """POST `path` with `params` in the query string: (status, parsed body)."""
    query = "&".join(f"{k}={urllib.parse.quote(str(v))}" for k, v in params.items())
    request = urllib.request.Request(f"{base}{path}?{query}", method="POST", data=b"")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


class Reply(NamedTuple):
    status: int
    headers: Dict[str, str]
    body: Any


def post_json(base: str, path: str, token: str = "", **params: Any) -> Reply:
    """A POST with `params` in a JSON body (passwords and long-polls too: no query string)."""
    request = urllib.request.Request(f"{base}{path}", method="POST", data=json.dumps(params).encode(),
                                     headers={"Content-Type": "application/json"})
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=40) as r:
            return Reply(r.status, dict(r.headers), json.loads(r.read()))
    except urllib.error.HTTPError as e:
        return Reply(e.code, dict(e.headers), json.loads(e.read() or b"null"))


def wait_serving(process: subprocess.Popen, output: Callable[[], str], deadline_seconds: float, what: str) -> None:
    """Until `output` says the API is served; fail at once if the process died."""
    deadline = time.monotonic() + deadline_seconds
    while "Serving the API on" not in output():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not start: {output()}")
        try:  # returns at once if the process died
            process.wait(timeout=0.05)
            raise RuntimeError(f"{what} exited with {process.returncode}: {output()}")
        except subprocess.TimeoutExpired:
            pass


def stop_group(process: subprocess.Popen, sig: int, timeout: float = 10) -> None:
    """Signal the process group we started; SIGKILL it if it lingers."""
    if process.poll() is None:
        os.killpg(process.pid, sig)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


class DevServer:
    """Started on a free port with the given settings; `url` once it serves."""

    def __init__(self, log_path: Path, **settings: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.settings = settings
        self.process: Optional[subprocess.Popen] = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def start(self) -> "DevServer":
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "devserver", "--host", "127.0.0.1", "--port", str(self.port)],
                cwd=PROJECT_ROOT, env=server_environment(**self.settings), stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True)
        try:
            wait_serving(self.process, self.log, STARTUP_DEADLINE_SECONDS, "devserver")
        except TimeoutError:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self.process is None:
            return
        stop_group(self.process, signal.SIGTERM)
        self.process = None
