"""The app's MySQL connection on a real MariaDB: reconnects after the server
drops it, fails fast with 503 when the server is unreachable, and sets up
its sessions (isolation level, character set) as the design says."""
from __future__ import annotations

import json
import socket
import time
import uuid
from typing import Any, Dict, Iterator, List, Tuple

import pytest

from chalicelib.db import Database
from chalicelib.settings import Settings
from tests.support.mysql import admin_connection, fresh_database
from tests.support.servers import wait_until

AUTH_SECRET = "test-signing-secret-0123456789abcdef"


@pytest.fixture
def database_url(mysql_url: str) -> Iterator[str]:
    """A database of its own (MariaDB only), so every connection to it is the app's."""
    with fresh_database("messaging_conn") as (url, _):
        yield url


def _app_connections(admin: Any, database: str) -> List[int]:
    cur = admin.cursor()
    cur.execute("SELECT id FROM information_schema.processlist WHERE db = %s AND id <> CONNECTION_ID()", (database,))
    return sorted(row[0] for row in cur.fetchall())


def test_a_connection_the_server_killed_is_replaced_and_the_next_requests_succeed(api, database_url):
    database = database_url.rsplit("/", 1)[1]
    alice, bob = api.register("alice"), api.register("bob")
    assert api.send(alice, bob, "before").status == 201
    admin = admin_connection()
    try:
        first = _app_connections(admin, database)
        assert len(first) == 1, first  # one lazily opened connection, reused by every request
        admin.cursor().execute(f"KILL CONNECTION {first[0]}")
        # A killed thread can stay listed a moment while it winds down.
        wait_until(lambda: _app_connections(admin, database) == [], 2, "the killed connection stayed listed")

        read = api.read(bob)  # a read on the dead connection
        assert read.status == 200, read
        assert [m["text"] for m in read.body["messages"]] == ["before"]
        second = _app_connections(admin, database)
        assert len(second) == 1 and second != first

        admin.cursor().execute(f"KILL CONNECTION {second[0]}")
        sent = api.send(alice, bob, "after")  # a write on the dead connection
        assert sent.status == 201, sent
    finally:
        admin.close()
    assert [m["text"] for m in api.read_all(bob)] == ["before", "after"]  # the write landed once


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def app_without_database(monkeypatch) -> Iterator[Any]:
    """The app with DATABASE_URL set by the test, and a token for a made-up user."""
    from chalice.test import Client

    from app import app
    from chalicelib import wiring
    from chalicelib.auth import TokenSigner

    for name in ("REDIS_URL", "MAX_GROUP_MEMBERS", "DB_SECRET_ARN", "AUTH_SECRET_ARN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AUTH_SECRET", AUTH_SECRET)
    monkeypatch.setenv("AUTH_MODE", "token")
    monkeypatch.setenv("DB_CONNECT_TIMEOUT", "1")
    monkeypatch.setenv("DB_READ_TIMEOUT", "1")
    user_id = str(uuid.uuid4())
    token = TokenSigner([AUTH_SECRET]).issue(user_id, user_id)

    def call(method: str, path: str, **params: str) -> Tuple[int, Any, Dict[str, str], float]:
        query = "&".join(f"{k}={v}" for k, v in params.items())
        started = time.monotonic()
        with Client(app) as client:
            r = client.http.request(method, path + ("?" + query if query else ""),
                                    headers={"Authorization": f"Bearer {token}"})
        return r.status_code, json.loads(r.body), dict(r.headers), time.monotonic() - started

    wiring.reset()
    yield call, user_id
    wiring.reset()


def _assert_unavailable_fast(call, user_id: str, limit_seconds: float, every_route: bool = True) -> None:
    """Each request answers 503 + Retry-After in less than limit_seconds."""
    requests = [
        ("POST", "/register", {"user_name": "shir"}),
        ("POST", "/read_messages", {"user_id": user_id, "after": "0"}),
        ("POST", "/create_group", {"group_name": "bambis"}),
    ]
    for method, path, params in requests if every_route else requests[:1]:
        status, body, headers, elapsed = call(method, path, **params)
        assert (status, body["Code"]) == (503, "ServiceUnavailable"), (path, status, body)
        assert headers.get("Retry-After", "").isdigit(), headers
        assert elapsed < limit_seconds, (path, elapsed)
    status, body, headers, elapsed = call("GET", "/health")
    assert status == 503 and body["database"] == "unavailable", body
    assert headers.get("Retry-After", "").isdigit(), headers
    assert elapsed < limit_seconds, elapsed


def test_with_the_database_port_closed_requests_answer_503_with_retry_after_within_the_connect_timeout(
        app_without_database, monkeypatch):
    call, user_id = app_without_database
    monkeypatch.setenv("DATABASE_URL", f"mysql://root@127.0.0.1:{_free_port()}/messaging")
    _assert_unavailable_fast(call, user_id, limit_seconds=3)


def test_with_a_database_server_that_accepts_but_never_greets_requests_answer_503_within_the_timeouts(
        app_without_database, monkeypatch):
    call, user_id = app_without_database
    with socket.socket() as silent:  # the kernel completes the handshake; nobody ever answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(64)
        monkeypatch.setenv("DATABASE_URL", f"mysql://root@127.0.0.1:{silent.getsockname()[1]}/messaging")
        # The TCP connect succeeds; PyMySQL then waits for the greeting under
        # DB_READ_TIMEOUT (1 s here), not DB_CONNECT_TIMEOUT.
        _assert_unavailable_fast(call, user_id, limit_seconds=3, every_route=False)


def test_mysql_sessions_use_read_committed_and_utf8mb4(database_url):
    db = Database(Settings.from_env({"DATABASE_URL": database_url}))
    try:
        isolation, client, connection, results, collation, emoji_chars = db.run(
            lambda tx: tx.one(
                "SELECT @@SESSION.tx_isolation, @@character_set_client, @@character_set_connection,"
                " @@character_set_results, @@collation_connection, CHAR_LENGTH(%s)",
                ("\U0001F600",),
            ),
            write=False,
        )
    finally:
        db.close()
    assert isolation == "READ-COMMITTED"
    assert (client, connection, results) == ("utf8mb4", "utf8mb4", "utf8mb4")
    assert collation.startswith("utf8mb4_")
    assert emoji_chars == 1


def test_a_read_whose_connection_dies_before_its_commit_is_retried_and_answers(api, database_url, monkeypatch):
    """A read's commit changes nothing, so a connection lost there is one
    more reconnect, not the 503 of a write whose outcome is unknown."""
    from chalicelib.repositories import Stream

    database = database_url.rsplit("/", 1)[1]
    alice, bob = api.register("alice"), api.register("bob")
    assert api.send(alice, bob, "hello").status == 201
    admin = admin_connection()
    page, kills = Stream.after, []

    def page_then_kill(self, **kwargs):
        entries = page(self, **kwargs)
        if not kills:  # the page is read; its COMMIT goes to a dead connection
            kills.extend(_app_connections(admin, database))
            admin.cursor().execute(f"KILL CONNECTION {kills[0]}")
        return entries

    monkeypatch.setattr(Stream, "after", page_then_kill)
    try:
        read = api.read(bob, after=0)
    finally:
        admin.close()
    assert len(kills) == 1
    assert read.status == 200 and [m["text"] for m in read.body["messages"]] == ["hello"], read
