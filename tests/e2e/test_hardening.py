"""What probing `make run` found, each over real sockets against the
development server: malformed requests are answered in the envelope and
logged without their content; a client frame cannot run the disconnect
handler; a server with AUTH_MODE=none mints nothing a real server accepts;
the local database is readable by its owner only; tickets, frames and a
user's connections are bounded."""
from __future__ import annotations

import json
import socket
import stat
import uuid
from pathlib import Path
from typing import Iterator, List

import pytest

from chalicelib.settings import DATA_DIR
from tests.support.devserver import DevServer, call
from tests.support.live import Socket, refused_status, register, send, ticket
from tests.support.servers import wait_until

AUTH_SECRET = "hardening-tests-signing-secret-0123"
TOKEN = "v1.AbCdEfGh.6f0c2a5e-0000-4000-8000-000000000001.SiGnAtUrEoFaToKeNtHaTmUsTnEvErBeLoGgEd"
TEXT = "the-start-of-a-private-message"


@pytest.fixture
def servers(tmp_path: Path) -> Iterator:
    started: List[DevServer] = []

    def start(name: str, **settings: str) -> DevServer:
        settings.setdefault("DATABASE_URL", f"sqlite:///{tmp_path / 'hardening.sqlite3'}")
        server = DevServer(tmp_path / f"{name}.log", **settings).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def raw_request(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(data)
        answer = b""
        while chunk := s.recv(65536):
            answer += chunk
    return answer


@pytest.mark.parametrize("request_bytes", [
    b"POST /read_messages HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + TOKEN.encode() + b"\x00\r\n\r\n",
    b"POST /send?message_text=" + TEXT.encode() * 300 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    b"POST /send HTTP/1.1\r\nHost: x\r\nX-Note: " + TEXT.encode() * 300 + b"\r\n\r\n",
], ids=["nul-in-header", "request-line-too-long", "header-too-long"])
def test_a_malformed_request_gets_the_envelope_and_its_log_line_quotes_nothing_of_it(servers, request_bytes):
    server = servers("a", AUTH_SECRET=AUTH_SECRET)
    head, _, body = raw_request(server.port, request_bytes).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.") and b" 400 " in head.split(b"\r\n")[0], head
    assert b"Content-Type: application/json" in head
    assert json.loads(body)["Code"] == "BadRequest"
    assert call(server.url, "/register", user_name="after")[0] == 201  # the server goes on serving
    wait_until(lambda: "(malformed) 400" in server.log(), 5, "no log line for the malformed request")
    log = server.log()
    assert TOKEN.split(".")[3] not in log and TOKEN not in log and TEXT not in log


def test_a_client_frame_cannot_run_the_disconnect_handler(servers):
    server = servers("a", AUTH_SECRET=AUTH_SECRET)
    alice, bob = register(server.url, "alice"), register(server.url, "bob")
    ws = Socket(f"{ticket(server.url, bob)['url']}?ticket={ticket(server.url, bob)['ticket']}").connect()
    try:
        ws.send('{"action": "$disconnect"}')
        ws.send('{"action":"ping"}')
        assert ws.next() == {"type": "pong"}  # frames are handled in order: the first one ran already
        send(server.url, alice, bob, "still connected")
        assert ws.next()["message"]["text"] == "still connected"
    finally:
        ws.close()


def test_a_server_without_auth_mints_no_token_or_ticket_a_real_server_accepts(servers, tmp_path):
    """Both servers share the database and the development signing secret
    in data/ (neither sets AUTH_SECRET), as two `make run`s would."""
    shared = {"DATABASE_URL": f"sqlite:///{tmp_path / 'shared.sqlite3'}"}
    real = servers("real", **shared)
    open_server = servers("open", AUTH_MODE="none", **shared)
    victim, mallory = register(real.url, "victim"), register(open_server.url, "mallory")
    status, minted = call(open_server.url, "/connect_ticket", user_id=victim["user_id"])
    assert status == 200
    websocket_url = ticket(real.url, victim)["url"]
    assert refused_status(f"{websocket_url}?ticket={minted['ticket']}") == 401
    assert call(real.url, "/read_messages", mallory["token"], user_id=mallory["user_id"], after=0)[0] == 401


def test_the_local_database_and_data_folder_are_readable_by_their_owner_only(servers):
    name = f"test-hardening-{uuid.uuid4().hex[:8]}.sqlite3"
    database = DATA_DIR / name
    try:
        server = servers("a", AUTH_SECRET=AUTH_SECRET, DATABASE_URL=f"sqlite:///{database}")
        alice, bob = register(server.url, "alice"), register(server.url, "bob")
        send(server.url, alice, bob, "private")
        assert stat.S_IMODE(DATA_DIR.stat().st_mode) == 0o700
        for path in (database, Path(f"{database}-wal"), Path(f"{database}-shm")):
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    finally:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{database}{suffix}").unlink(missing_ok=True)


def test_tickets_and_frames_are_limited(servers):
    server = servers("a", AUTH_SECRET=AUTH_SECRET, RATE_LIMIT_TICKETS_PER_MINUTE="3",
                     RATE_LIMIT_FRAMES_PER_MINUTE="2")
    bob = register(server.url, "bob")
    statuses = [call(server.url, "/connect_ticket", bob["token"], user_id=bob["user_id"])[0] for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    status, refused = call(server.url, "/connect_ticket", bob["token"], user_id=bob["user_id"])
    assert refused["Code"] == "RateLimited"
    other = register(server.url, "carol")
    t = ticket(server.url, other)
    ws = Socket(f"{t['url']}?ticket={t['ticket']}").connect()
    try:
        for _ in range(3):
            ws.send('{"action":"ping"}')
        assert [ws.next(), ws.next()] == [{"type": "pong"}] * 2
        assert ws.nothing_within(1.0)  # the third ping is over the limit: no pong
    finally:
        ws.close()


def test_a_connection_beyond_the_per_user_maximum_is_refused_with_429(servers):
    server = servers("a", AUTH_SECRET=AUTH_SECRET)
    alice, bob = register(server.url, "alice"), register(server.url, "bob")
    sockets = []
    try:
        for _ in range(10):
            t = ticket(server.url, bob)
            sockets.append(Socket(f"{t['url']}?ticket={t['ticket']}").connect())
        t = ticket(server.url, bob)
        assert refused_status(f"{t['url']}?ticket={t['ticket']}") == 429
        send(server.url, alice, bob, "to all ten")
        assert all(s.next()["message"]["text"] == "to all ten" for s in sockets)  # none was dropped
        sockets.pop().close()
        t = ticket(server.url, bob)
        wait_until(lambda: refused_status(f"{t['url']}?ticket={t['ticket']}") is None, 5, "a freed slot stays taken")
    finally:
        for s in sockets:
            s.close()
