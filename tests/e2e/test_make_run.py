"""`make run` as a new user meets it: it stays up while the embedded SQLite
file in data/ is written, refuses a taken port with one line, and refuses or
rebuilds what a wrong Python made."""
from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path
from typing import Iterator, List, Tuple

import pytest

from chalicelib.settings import PROJECT_ROOT
from tests.support.devserver import call, server_environment, stop_group, wait_serving
from tests.support.servers import free_port

STARTUP_DEADLINE_SECONDS = 60  # includes `scripts/venv.sh local` checking .venv
# A real older interpreter: pyenv's or the system's, whichever this machine has.
OLD_PYTHON = next((str(p) for p in sorted(Path("/root/.pyenv/versions").glob("3.10*/bin/python3"))
                   + [Path("/usr/bin/python3.10"), Path("/usr/bin/python3.9")] if p.exists()), "python3.10")


def _environment(**extra: str) -> dict:
    env = server_environment(**extra)
    for name in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS"):  # under `make test` the inner make would say make[1]
        env.pop(name, None)
    return env


class MakeRun:
    """`make run` in a process group of its own; its output collected."""

    def __init__(self, port: int, env: dict, log: Path) -> None:
        self.log = log
        self._out = open(log, "wb")
        self.process = subprocess.Popen(
            ["make", "--no-print-directory", "run", f"PORT={port}", "HOST=127.0.0.1"],
            cwd=PROJECT_ROOT, env=env, stdout=self._out, stderr=subprocess.STDOUT, start_new_session=True)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_serving(self) -> None:
        wait_serving(self.process, self.output, STARTUP_DEADLINE_SECONDS, "make run")

    def stop(self) -> None:
        stop_group(self.process, signal.SIGINT, timeout=15)
        self._out.close()


@pytest.fixture
def make_run(tmp_path: Path) -> Iterator[Tuple[str, MakeRun]]:
    # A database file inside the project's data/ folder, where `chalice
    # local`'s reloader used to see every write.
    database = PROJECT_ROOT / "data" / f"test-make-run-{uuid.uuid4().hex[:8]}.sqlite3"
    port = free_port()
    run = MakeRun(port, _environment(DATABASE_URL=f"sqlite:///{database}"), tmp_path / "make-run.log")
    try:
        run.wait_serving()
        yield f"http://127.0.0.1:{port}", run
    finally:
        run.stop()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{database}{suffix}").unlink(missing_ok=True)


def test_make_run_stays_up_and_acknowledges_50_sends_over_20_seconds(make_run):
    base, run = make_run
    status, alice = call(base, "/register", user_name="alice")
    assert status == 201, alice
    status, bob = call(base, "/register", user_name="bob")
    assert status == 201, bob
    acknowledged: List[int] = []
    started = time.monotonic()
    for i in range(50):
        # Paced, not synchronizing: a user typing a message every 0.4 s.
        time.sleep(max(0.0, started + i * 0.4 - time.monotonic()))
        status, body = call(base, "/send", alice["token"], sending_user_id=alice["user_id"],
                            receiving_user_id=bob["user_id"], message_text=f"message-{i}")
        assert status == 201, (i, body)
        acknowledged.append(i)
    assert time.monotonic() - started >= 19.6
    status, page = call(base, "/read_messages", bob["token"], user_id=bob["user_id"], after=0)
    assert status == 200 and [m["text"] for m in page["messages"]] == [f"message-{i}" for i in acknowledged]
    assert run.output().count("Serving the API on") == 1, run.output()  # never restarted
    assert run.process.poll() is None
    # One short line per request on the terminal, never the text sent (SQLite
    # runs each statement as its own call: the send's four and its COMMIT).
    sends = [line for line in run.output().splitlines() if line.startswith("POST /send 201 ")]
    assert len(sends) == 50 and all(" ms  db 5 in 5, redis 0  " in line for line in sends), run.output()[-2000:]
    assert "message-" not in run.output()


def test_make_run_on_a_taken_port_exits_at_once_with_one_line(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        started = time.monotonic()
        result = subprocess.run(["make", "--no-print-directory", "run", f"PORT={port}", "HOST=127.0.0.1"],
                                cwd=PROJECT_ROOT, env=_environment(), capture_output=True, text=True, timeout=60)
        elapsed = time.monotonic() - started
    assert result.returncode != 0
    ours = [line for line in (result.stdout + result.stderr).splitlines()
            if line and not line.startswith(("make: ", "installing "))]
    assert ours == [f"error: port {port} on 127.0.0.1 is already in use (another `make run`?); "
                    f"stop that process or choose another port: make run PORT={port + 1}"], result
    assert "Traceback" not in result.stderr
    assert elapsed < 30, elapsed


def _venv_sandbox(tmp_path: Path) -> Path:
    """The venv script and empty requirements in a directory of their own,
    so the project's own .venv is never touched."""
    sandbox = tmp_path / "project"
    (sandbox / "scripts").mkdir(parents=True)
    shutil.copy(PROJECT_ROOT / "scripts" / "venv.sh", sandbox / "scripts" / "venv.sh")
    for name in ("requirements.txt", "requirements-local.txt"):
        (sandbox / name).write_text("# nothing to install\n")
    return sandbox


def _venv(sandbox: Path, python: str) -> subprocess.CompletedProcess:
    return subprocess.run(["scripts/venv.sh", "local"], cwd=sandbox, env={**_environment(), "PYTHON": python},
                          capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(not Path(OLD_PYTHON).exists(), reason=f"no Python 3.10 at {OLD_PYTHON} to try")
def test_a_python_older_than_3_11_is_refused_with_one_line(tmp_path):
    result = _venv(_venv_sandbox(tmp_path), OLD_PYTHON)
    assert result.returncode != 0
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith(f"error: Python 3.11 or newer is needed; {OLD_PYTHON} is 3."), line
    assert not (tmp_path / "project" / ".venv").exists()


def test_a_venv_made_by_another_python_is_rebuilt(tmp_path):
    first, second = "/usr/bin/python3.11", shutil.which("python3")
    version = [subprocess.run([p, "-c", "import sys; print(sys.version)"], capture_output=True, text=True).stdout
               for p in (first, second)]
    if not Path(first).exists() or version[0] == version[1]:
        pytest.skip("needs two different Python 3.11+ interpreters (Debian's python3.11 and another)")
    sandbox = _venv_sandbox(tmp_path)
    assert _venv(sandbox, first).returncode == 0
    made_by = lambda: subprocess.run([sandbox / ".venv/bin/python", "-c", "import sys; print(sys.version)"],
                                     capture_output=True, text=True).stdout
    assert made_by() == version[0]
    result = _venv(sandbox, second)
    assert result.returncode == 0, result.stderr
    assert "rebuilding .venv: it was made by another Python" in result.stdout
    assert made_by() == version[1]
    again = _venv(sandbox, second)  # nothing changed: nothing rebuilt or installed
    assert again.returncode == 0 and again.stdout == "", again


@pytest.mark.parametrize("setting, value, rule", [
    ("AUTH_SECRET", "tooshort", "AUTH_SECRET: each token signing secret must be at least 16 characters"),
    ("DATABASE_URL", "postgres://user:hunter2@db.example/app", "DATABASE_URL must start with mysql:// or sqlite:///"),
    ("DATABASE_URL", "mysql://user:hunter2@db.example:99999/app", "DATABASE_URL has a malformed host or port"),
    ("LONG_POLL_MAX_SECONDS", "forever", "LONG_POLL_MAX_SECONDS must be an integer"),
])
def test_make_run_with_a_bad_setting_exits_at_once_with_one_line_naming_it_never_its_value(setting, value, rule):
    result = subprocess.run(["make", "--no-print-directory", "run", f"PORT={free_port()}", "HOST=127.0.0.1"],
                            cwd=PROJECT_ROOT, env=_environment(**{setting: value}), capture_output=True, text=True,
                            timeout=60)
    assert result.returncode != 0
    ours = [line for line in (result.stdout + result.stderr).splitlines()
            if line and not line.startswith(("make: ", "installing "))]
    assert len(ours) == 1 and ours[0].startswith(f"error: {rule}"), result
    assert value not in result.stdout + result.stderr and "hunter2" not in result.stdout + result.stderr
