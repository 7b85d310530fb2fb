"""Signing a device out holds across processes, as across Lambda containers:
two development servers share MariaDB and Redis; a session signed out on
one is refused by the other within its bound (SESSION_CACHE_SECONDS, at
most 30, well inside the 60 s the API promises), its WebSocket connections
are closed at once, and a connect ticket opens one connection only, on any
server, and none once its session is signed out."""
from __future__ import annotations

import secrets
import time
from pathlib import Path
from typing import Dict, Iterator, Tuple

import pytest

from tests.support.devserver import DevServer, post_json
from tests.support.live import Socket, refused_status
from tests.support.mysql import fresh_database
from tests.support.servers import wait_until

PASSWORD = "correct horse battery"
BOUND = 2  # B's SESSION_CACHE_SECONDS: how long it trusts its own "live"


@pytest.fixture
def two_servers(tmp_path: Path, session_redis) -> Iterator[Tuple[DevServer, DevServer]]:
    with fresh_database("messaging_sessions") as (url, _):
        settings = {"DATABASE_URL": url, "REDIS_URL": session_redis.url, "REDIS_TIMEOUT": "1",
                    "AUTH_SECRET": "sessions-across-servers-secret-0123"}
        a = DevServer(tmp_path / "a.log", **settings).start()
        b = DevServer(tmp_path / "b.log", SESSION_CACHE_SECONDS=str(BOUND), **settings).start()
        try:
            yield a, b
        finally:
            a.stop()
            b.stop()


def sign_up(base: str) -> Dict[str, str]:
    r = post_json(base, "/register", user_name="shir", handle="s" + secrets.token_hex(5), password=PASSWORD,
                  device_name="laptop")
    assert r.status == 201, r
    return r.body


def reads(base: str, device: Dict[str, str]) -> int:
    return post_json(base, "/read_messages", device["token"], user_id=device["user_id"], after=0).status


def test_a_device_signed_out_on_one_server_is_refused_by_the_other_within_the_bound(two_servers):
    a, b = two_servers
    laptop = sign_up(a.url)
    login = post_json(b.url, "/login", handle=laptop["handle"], password=PASSWORD, device_name="phone")
    assert login.status == 200
    phone = login.body
    assert reads(b.url, phone) == 200  # b now trusts the phone's session for BOUND seconds
    signed_out = post_json(a.url, "/logout", laptop["token"], session_id=phone["session_id"])
    assert (signed_out.status, signed_out.body) == (200, {"revoked": 1})
    assert reads(a.url, phone) == 401  # at once where it was signed out
    signed_out = time.monotonic()
    wait_until(lambda: reads(b.url, phone) == 401, 60, "the other server still accepts the signed-out token")
    assert time.monotonic() - signed_out <= BOUND + 5
    assert reads(b.url, laptop) == 200  # the other device is untouched


def test_signing_out_closes_the_devices_websocket_at_once(two_servers):
    a, _ = two_servers
    laptop = sign_up(a.url)
    phone = post_json(a.url, "/login", handle=laptop["handle"], password=PASSWORD, device_name="phone").body
    ticket = post_json(a.url, "/connect_ticket", phone["token"], user_id=phone["user_id"]).body
    socket = Socket(f"{ticket['url']}?ticket={ticket['ticket']}").connect()
    try:
        signed_out = post_json(a.url, "/logout", laptop["token"], session_id=phone["session_id"])
        assert (signed_out.status, signed_out.body) == (200, {"revoked": 1})
        wait_until(lambda: socket.closed(), 5, "the signed-out device's WebSocket stayed open")
    finally:
        socket.close()


def test_a_connect_ticket_opens_one_connection_on_any_server_and_none_once_signed_out(two_servers):
    a, b = two_servers
    laptop = sign_up(a.url)
    ticket = post_json(a.url, "/connect_ticket", laptop["token"], user_id=laptop["user_id"]).body
    url = f"{ticket['url']}?ticket={ticket['ticket']}"
    first = Socket(url).connect()
    try:
        assert refused_status(url) == 401  # the same ticket again, same server
        b_url = url.replace(f":{a.port}/", f":{b.port}/")
        assert refused_status(b_url) == 401  # and on the other server
    finally:
        first.close()
    unused = post_json(a.url, "/connect_ticket", laptop["token"], user_id=laptop["user_id"]).body
    signed_out = post_json(a.url, "/logout", laptop["token"])
    assert (signed_out.status, signed_out.body) == (200, {"revoked": 1})
    assert refused_status(f"{unused['url']}?ticket={unused['ticket']}") == 401
