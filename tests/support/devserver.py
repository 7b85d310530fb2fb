"""`python -m devserver` (what `make run` runs) as a process of the test's own."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, Optional

from tests.support.servers import free_port

PROJECT_ROOT = Path(__file__).resolve().parents[2]
STARTUP_DEADLINE_SECONDS = 30
# Variables of the developer's shell that would change what the server does.
_CLEARED_PREFIXES = ("REDIS_", "RATE_LIMIT_", "AUTH_", "DB_", "CACHE_", "LONG_POLL_", "MAX_GROUP_")


def server_environment(**settings: str) -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_CLEARED_PREFIXES) and k != "DATABASE_URL"}
    env.update(settings)
    return env


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
        deadline = time.monotonic() + STARTUP_DEADLINE_SECONDS
        while "Serving the API on" not in self.log():
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"devserver did not start: {self.log()}")
            try:  # returns at once if the server died
                self.process.wait(timeout=0.05)
                raise RuntimeError(f"devserver exited with {self.process.returncode}: {self.log()}")
            except subprocess.TimeoutExpired:
                pass
        return self

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        self.process = None
