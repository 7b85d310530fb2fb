"""Private server processes for tests that stop and restart them."""
from __future__ import annotations

import shutil
import socket
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, List, Optional, Tuple


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout: float, what: str) -> None:
    """Poll `predicate` until it is true; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} within {timeout}s")
        time.sleep(0.02)


def in_background(call: Callable[[], Any], timeout: float = 60) -> Callable[[], Tuple[Any, float]]:
    """Start `call` in a thread; the returned function waits for it and
    gives (its result, the monotonic time it returned)."""
    pool = ThreadPoolExecutor(max_workers=1)
    future = pool.submit(lambda: (call(), time.monotonic()))
    pool.shutdown(wait=False)
    return lambda: future.result(timeout=timeout)


def accepts_connections(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


class RedisServer:
    """A redis-server of the test's own on a free port, nothing on disk."""

    def __init__(self, workdir: Path, extra_args: Optional[List[str]] = None) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.extra_args = extra_args or []
        self.process: Optional[subprocess.Popen] = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> "RedisServer":
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.workdir), *self.extra_args],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        wait_until(lambda: accepts_connections(self.port), 10, f"redis-server on port {self.port} did not start")
        return self

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None
        wait_until(lambda: not accepts_connections(self.port), 10, f"redis-server on port {self.port} did not stop")


class MariaDBServer:
    """A mariadbd of the test's own: its own datadir, a free port, root
    without a password over TCP. Stopped with SIGKILL, like a crash."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.datadir = workdir / "data"
        self.socket = workdir / "mysqld.sock"
        self.log = workdir / "mysqld.log"
        self.process: Optional[subprocess.Popen] = None
        install = shutil.which("mariadb-install-db") or "/usr/bin/mariadb-install-db"
        subprocess.run([install, "--no-defaults", f"--datadir={self.datadir}", "--user=root",
                        "--auth-root-authentication-method=normal", "--skip-test-db"],
                       check=True, capture_output=True, timeout=120)

    @property
    def url(self) -> str:
        return f"mysql://root@127.0.0.1:{self.port}"

    def start(self) -> "MariaDBServer":
        binary = shutil.which("mariadbd") or "/usr/sbin/mariadbd"
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [binary, "--no-defaults", f"--datadir={self.datadir}", f"--port={self.port}",
                 f"--socket={self.socket}", "--bind-address=127.0.0.1", "--user=root", "--skip-log-bin",
                 "--innodb-buffer-pool-size=32M"],
                stdout=log, stderr=subprocess.STDOUT)
        wait_until(lambda: accepts_connections(self.port), 60, f"mariadbd on port {self.port} did not start")
        return self

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=30)
            self.process = None
        wait_until(lambda: not accepts_connections(self.port), 10, f"mariadbd on port {self.port} did not stop")
