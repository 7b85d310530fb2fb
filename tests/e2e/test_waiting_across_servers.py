"""The waiting-read caps hold across processes, as across Lambda containers:
two development servers share MariaDB and Redis; one user's sixth waiting
read answers at once whichever server it reaches, and each server holds at
most its own cap of waits while the other still takes them."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Dict, Iterator, Tuple

import pytest
import redis as redis_lib

from chalicelib import keys
from tests.support.devserver import DevServer
from tests.support.devserver import post_json as post
from tests.support.mysql import fresh_database
from tests.support.servers import in_background, wait_until


@pytest.fixture
def two_servers(tmp_path: Path, session_redis) -> Iterator[Tuple[DevServer, DevServer]]:
    with fresh_database("messaging_waits") as (url, _):
        settings = {"DATABASE_URL": url, "REDIS_URL": session_redis.url, "REDIS_TIMEOUT": "1",
                    "AUTH_SECRET": "waiting-caps-signing-secret-0123"}
        a = DevServer(tmp_path / "a.log", LONG_POLL_MAX_PER_PROCESS="2", **settings).start()
        b = DevServer(tmp_path / "b.log", **settings).start()
        try:
            yield a, b
        finally:
            a.stop()
            b.stop()


def register(base: str, name: str) -> Dict[str, str]:
    status, _, body = post(base, "/register", user_name=name)
    assert status == 201, body
    return body


def read(base: str, user: Dict[str, str], wait: int = 15) -> Any:
    return post(base, "/read_messages", user["token"], user_id=user["user_id"], after=0, wait=wait)


def test_one_user_holds_at_most_five_waits_across_two_servers(two_servers, session_redis):
    a, b = two_servers
    waits = redis_lib.Redis.from_url(session_redis.url)
    alice, bob = register(a.url, "alice"), register(b.url, "bob")
    waiting = [in_background(lambda s=s: read(s.url, bob), timeout=60) for s in (a, b, b, b, b)]
    wait_until(lambda: waits.zcard(keys.waits(bob["user_id"])) == 5, 15, "five reads did not wait")
    for server in (a, b):
        started = time.monotonic()
        status, headers, body = read(server.url, bob)
        assert status == 200 and body["messages"] == [] and time.monotonic() - started < 3
        assert headers["X-Wait-Refused"] == "per-user", headers
    assert post(a.url, "/send", alice["token"], sending_user_id=alice["user_id"], receiving_user_id=bob["user_id"],
                message_text="to all five")[0] == 201
    for result in waiting:
        (status, headers, body), _ = result()
        assert status == 200 and [m["text"] for m in body["messages"]] == ["to all five"]
        assert "X-Wait-Refused" not in headers


def test_each_server_holds_at_most_its_own_cap_of_waits(two_servers, session_redis):
    a, b = two_servers
    waits = redis_lib.Redis.from_url(session_redis.url)
    alice = register(a.url, "alice")
    readers = [register(a.url, f"reader{i}") for i in range(4)]
    on_a = [in_background(lambda r=r: read(a.url, r), timeout=60) for r in readers[:2]]
    wait_until(lambda: all(waits.zcard(keys.waits(r["user_id"])) == 1 for r in readers[:2]), 15, "a did not wait")
    status, headers, _ = read(a.url, readers[2])
    assert status == 200 and headers["X-Wait-Refused"] == "per-process", headers
    on_b = in_background(lambda: read(b.url, readers[3]), timeout=60)  # the other server still takes waits
    wait_until(lambda: waits.zcard(keys.waits(readers[3]["user_id"])) == 1, 15, "b did not take the wait")
    for reader in (readers[0], readers[1], readers[3]):
        assert post(b.url, "/send", alice["token"], sending_user_id=alice["user_id"],
                    receiving_user_id=reader["user_id"], message_text="wake")[0] == 201
    for result in on_a + [on_b]:
        (status, headers, body), _ = result()
        assert status == 200 and [m["text"] for m in body["messages"]] == ["wake"] and "X-Wait-Refused" not in headers
