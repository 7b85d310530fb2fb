"""The original specification's example calls, over real HTTP, against
`chalice local` started as a separate process (on SQLite and on MariaDB)."""
from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Dict, Iterator, Optional, Tuple
from urllib.parse import quote

import pytest

from chalicelib.settings import PROJECT_ROOT

CHALICE = PROJECT_ROOT / ".venv" / "bin" / "chalice"
AUTH_SECRET = "e2e-signing-secret-0123456789abcdef"
STARTUP_DEADLINE_SECONDS = 30
ISO_UTC = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z")
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _call(base: str, method: str, path_and_query: str, token: Optional[str] = None) -> Tuple[int, Any, Dict[str, str]]:
    request = urllib.request.Request(base + path_and_query, method=method, data=b"" if method == "POST" else None)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            return r.status, json.loads(r.read() or b"null"), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null"), dict(e.headers)


@pytest.fixture(params=["sqlite", "mysql"])
def server_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'local.sqlite3'}"  # a new file: the server migrates it itself
    return request.getfixturevalue("mysql_url")


@pytest.fixture
def server(server_database_url: str, tmp_path: Path) -> Iterator[str]:
    """Base URL of a running `chalice local`; stopped after the test."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items()
           if k not in ("REDIS_URL", "MAX_GROUP_MEMBERS", "DB_SECRET_ARN", "AUTH_SECRET_ARN")}
    env.update(DATABASE_URL=server_database_url, AUTH_SECRET=AUTH_SECRET, AUTH_MODE="token")
    log_path = tmp_path / "chalice-local.log"
    with open(log_path, "wb") as log:
        # --no-autoreload: the reloader would restart the server whenever a
        # source file changes during the test.
        proc = subprocess.Popen(
            [str(CHALICE), "local", "--host", "127.0.0.1", "--port", str(port), "--stage", "dev", "--no-autoreload"],
            cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_DEADLINE_SECONDS
        while True:
            try:
                status, body, _ = _call(base, "GET", "/health")
                if status == 200:
                    break
            except (ConnectionError, urllib.error.URLError, socket.timeout):
                pass
            assert time.monotonic() < deadline, f"chalice local did not answer /health: {log_path.read_text()}"
            try:  # the poll interval; returns at once if the server died
                proc.wait(timeout=0.05)
                pytest.fail(f"chalice local exited with {proc.returncode}: {log_path.read_text()}")
            except subprocess.TimeoutExpired:
                pass
        yield base
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # the group we started: the CLI and anything it spawned
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def test_the_original_example_calls_work_over_http_against_chalice_local(server):
    def post(path_and_query: str, token: Optional[str] = None) -> Tuple[int, Any]:
        status, body, _ = _call(server, "POST", path_and_query, token)
        return status, body

    status, health, _ = _call(server, "GET", "/health")
    assert (status, health["database"]) == (200, "ok")

    # POST /register?user_name=shir (and the two other users of the examples)
    users = []
    for name in ("shir", "dana", "noa"):
        status, body = post(f"/register?user_name={name}")
        assert status == 201, body
        assert set(body) == {"user_id", "user_name", "handle", "token", "session_id"} and body["user_name"] == name
        assert UUID.fullmatch(body["user_id"])
        users.append(body)
    one, two, three = users  # users 1, 2 and 3 of the examples

    # POST /block?blocking_user_id=3&blocked_user_id=1&to_block=1
    status, body = post(f"/block?blocking_user_id={three['user_id']}&blocked_user_id={one['user_id']}&to_block=1",
                        three["token"])
    assert (status, body) == (200, {"blocking_user_id": three["user_id"], "blocked_user_id": one["user_id"],
                                    "blocked": True})

    # POST /send?sending_user_id=1&receiving_user_id=3&message_text=hi -- user 3 blocks user 1
    status, body = post(f"/send?sending_user_id={one['user_id']}&receiving_user_id={three['user_id']}"
                        "&message_text=hi", one["token"])
    assert (status, body["Code"]) == (403, "Blocked")
    # ... and the same call to user 2, who blocks nobody
    status, direct = post(f"/send?sending_user_id={one['user_id']}&receiving_user_id={two['user_id']}"
                          "&message_text=hi", one["token"])
    assert status == 201, direct
    assert set(direct) == {"message_id", "sent_at", "duplicate"} and direct["duplicate"] is False
    assert ISO_UTC.fullmatch(direct["sent_at"])

    # POST /create_group?group_name=bambis
    status, group = post("/create_group?group_name=bambis", one["token"])
    assert status == 201 and group["group_name"] == "bambis" and UUID.fullmatch(group["group_id"]), group
    group_id = group["group_id"]

    # POST /update_group?user_id=1&group_id=...&to_be_added=1 (and users 2 and 3 join too)
    for user in (one, two, three):
        status, body = post(f"/update_group?user_id={user['user_id']}&group_id={group_id}&to_be_added=1",
                            user["token"])
        assert (status, body) == (200, {"group_id": group_id, "user_id": user["user_id"], "member": True})

    # POST /send_group?sending_user_id=1&group_id=...&message_text=hello_group
    status, sent = post(f"/send_group?sending_user_id={one['user_id']}&group_id={group_id}"
                        "&message_text=hello_group", one["token"])
    assert status == 201, sent
    assert sent["recipients"] == 1 and sent["duplicate"] is False  # user 2; user 3 blocks the sender

    # POST /read_messages?user_id=2&min_timestamp=2024-07-01 09:10:00.0
    since = quote("2024-07-01 09:10:00.0")
    status, read = post(f"/read_messages?user_id={two['user_id']}&min_timestamp={since}", two["token"])
    assert status == 200, read
    # Between the two, user 2's stream holds the joins to the group (events
    # /read_messages does not show): the group message's seq is after them.
    group_seq = read["messages"][-1]["seq"]
    assert read["has_more"] is False and read["next_after"] == group_seq and group_seq > 2
    assert read["messages"] == [
        {"seq": 1, "message_id": direct["message_id"], "kind": "direct", "sender_id": one["user_id"],
         "group_id": None, "text": "hi", "sent_at": direct["sent_at"], "attachments": []},
        {"seq": group_seq, "message_id": sent["message_id"], "kind": "group", "sender_id": one["user_id"],
         "group_id": group_id, "text": "hello_group", "sent_at": sent["sent_at"], "attachments": []},
    ]
    # User 3 blocked user 1 before both sends: nothing arrived.
    status, read = post(f"/read_messages?user_id={three['user_id']}&min_timestamp={since}", three["token"])
    # (its next_after is user 3's newest seq, for switching to the cursor: the joins' events)
    assert (status, read["messages"], read["has_more"]) == (200, [], False) and read["next_after"] >= 1

    # Without a token the same call is refused.
    status, body = post(f"/read_messages?user_id={two['user_id']}&min_timestamp={since}")
    assert (status, body["Code"]) == (401, "Unauthorized")
