"""Live delivery over real sockets, through `make run`'s development server:
long-polls woken by a send in another server process (with Redis, and on a
shared SQLite file without it), and WebSocket push: tickets, frames, gaps,
disconnects, gone and dead connections, and Redis going away."""
from __future__ import annotations

import asyncio
import json
import socket
import threading
import re
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

import aiohttp
import pytest
import redis as redis_lib

from chalicelib import keys
from chalicelib.auth import TokenSigner
from tests.support.devserver import DevServer, call
from tests.support.live import FRAME_TIMEOUT, Socket, read, refused_status, register, send, ticket
from tests.support.servers import RedisServer, in_background, wait_until

AUTH_SECRET = "live-delivery-secret-0123456789abcdef"


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[List[DevServer]]:
    started: List[DevServer] = []

    def start(name: str, **settings: str) -> DevServer:
        server = DevServer(tmp_path / f"{name}.log", AUTH_SECRET=AUTH_SECRET, **settings).start()
        started.append(server)
        return server

    yield start  # type: ignore[misc]
    for server in started:
        server.stop()


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path).start()
    yield server
    if server.process is not None:
        server.stop()


# --------------------------------------------------------------------------- long-poll across processes


def test_with_redis_a_send_in_another_process_wakes_a_waiting_reader_within_half_a_second(
        servers, mysql_url, private_redis):
    a = servers("a", DATABASE_URL=mysql_url, REDIS_URL=private_redis.url)
    b = servers("b", DATABASE_URL=mysql_url, REDIS_URL=private_redis.url)
    alice, bob = register(b.url, "alice"), register(a.url, "bob")
    result = in_background(lambda: read(a.url, bob, after=0, wait=10))
    subscribers = redis_lib.Redis.from_url(private_redis.url)
    wait_until(lambda: subscribers.pubsub_numsub(keys.wake_channel(bob["user_id"]))[0][1] == 1, 10,
               "the reader did not subscribe")
    send(b.url, alice, bob, "across processes")
    acknowledged = time.monotonic()
    page, returned = result()
    assert [m["text"] for m in page["messages"]] == ["across processes"]
    assert returned - acknowledged < 0.5, returned - acknowledged


def test_without_redis_a_send_in_another_process_wakes_a_waiting_reader_within_a_second_and_a_half(
        servers, tmp_path):
    database = f"sqlite:///{tmp_path / 'shared.sqlite3'}"
    a = servers("a", DATABASE_URL=database)
    b = servers("b", DATABASE_URL=database)
    alice, bob = register(b.url, "alice"), register(a.url, "bob")
    started = time.monotonic()
    result = in_background(lambda: read(a.url, bob, after=0, wait=10))
    # Pacing, not synchronization: nothing outside server a shows that its
    # reader waits, so the read is given a second's head start, and the
    # server's own timing of the read below proves that it was waiting.
    time.sleep(1.0)
    send(b.url, alice, bob, "across processes")
    acknowledged = time.monotonic()
    page, returned = result()
    assert [m["text"] for m in page["messages"]] == ["across processes"]
    assert returned - acknowledged < 1.5, returned - acknowledged
    assert returned - started >= 1.0
    # Server a's request line: the read took most of the head start plus the
    # wake-up, so it waited there and was woken, rather than arriving after
    # the send and finding the message at once (a few ms).
    lines = re.findall(r"^POST /read_messages 200 ([0-9.]+) ms", a.log(), re.MULTILINE)
    assert len(lines) == 1 and float(lines[0]) >= 500, a.log()


# --------------------------------------------------------------------------- WebSocket push


@pytest.fixture(params=["no_redis", "redis"])
def push_server(request, servers, tmp_path) -> Tuple[DevServer, Optional[RedisServer]]:
    if request.param == "redis":
        redis_server = request.getfixturevalue("private_redis")
        return servers("push", DATABASE_URL=f"sqlite:///{tmp_path / 'push.sqlite3'}",
                       REDIS_URL=redis_server.url), redis_server
    return servers("push", DATABASE_URL=f"sqlite:///{tmp_path / 'push.sqlite3'}"), None


def connected(base: str, user: Dict[str, str]) -> Socket:
    t = ticket(base, user)
    assert t["url"].startswith("ws://") and t["expires_in"] == 60
    return Socket(f"{t['url']}?ticket={t['ticket']}").connect()


def test_a_connected_user_receives_direct_and_group_messages_as_read_messages_items(push_server):
    server, _ = push_server
    alice, bob, carol = register(server.url, "alice"), register(server.url, "bob"), register(server.url, "carol")
    status, group = call(server.url, "/create_group", alice["token"], group_name="g")
    assert status == 201, group
    for user in (alice, bob, carol):
        assert call(server.url, "/update_group", user["token"], user_id=user["user_id"],
                    group_id=group["group_id"], to_be_added=1)[0] == 200
    socket_ = connected(server.url, bob)
    try:
        send(server.url, alice, bob, "direct")
        status, _ = call(server.url, "/send_group", carol["token"], sending_user_id=carol["user_id"],
                         group_id=group["group_id"], message_text="to the group")
        assert status == 201
        frames = [socket_.next(), socket_.next()]
        assert [f["type"] for f in frames] == ["message", "message"]
        assert [f["message"] for f in frames] == read(server.url, bob, after=0)["messages"]
        socket_.send('{"action":"ping"}')
        assert socket_.next() == {"type": "pong"}
    finally:
        socket_.close()


def test_a_ticket_connects_only_its_own_user_and_bad_tickets_are_refused(push_server):
    server, _ = push_server
    alice, bob, carol = register(server.url, "alice"), register(server.url, "bob"), register(server.url, "carol")
    t = ticket(server.url, bob)
    base = t["url"]
    expired = TokenSigner([AUTH_SECRET]).issue_ticket(bob["user_id"], bob["session_id"], now=time.time() - 120)
    forged = TokenSigner(["not-the-servers-secret-0123456789"]).issue_ticket(bob["user_id"], bob["session_id"])
    assert refused_status(base) == 401
    assert refused_status(f"{base}?ticket={expired}") == 401
    assert refused_status(f"{base}?ticket={forged}") == 401
    assert refused_status(f"{base}?ticket={bob['token']}") == 401  # a token is no ticket
    status, body = call(server.url, "/connect_ticket", alice["token"], user_id=bob["user_id"])
    assert (status, body["Code"]) == (403, "Forbidden")  # no ticket for someone else
    socket_ = Socket(f"{base}?ticket={t['ticket']}").connect()
    try:
        send(server.url, alice, carol, "not for bob")
        send(server.url, alice, bob, "for bob")
        assert socket_.next()["message"]["text"] == "for bob"
    finally:
        socket_.close()


def test_a_client_that_sees_a_gap_fills_it_with_a_cursor_read(push_server):
    server, _ = push_server
    alice, bob = register(server.url, "alice"), register(server.url, "bob")
    first = connected(server.url, bob)
    send(server.url, alice, bob, "one")
    have = first.next()["message"]["seq"]
    first.close()
    send(server.url, alice, bob, "two (while offline)")
    again = connected(server.url, bob)
    try:
        send(server.url, alice, bob, "three")
        frame = again.next()["message"]
        assert (have, frame["seq"]) == (1, 3)  # a gap
        missed = read(server.url, bob, after=have)["messages"]
        assert [m["text"] for m in missed] == ["two (while offline)", "three"]
    finally:
        again.close()


def test_disconnecting_forgets_the_connection_and_a_gone_one_is_dropped_when_posting(
        servers, tmp_path, private_redis):
    # With Redis, so the registry's keys can be looked at.
    server = servers("registry", DATABASE_URL=f"sqlite:///{tmp_path / 'registry.sqlite3'}",
                     REDIS_URL=private_redis.url)
    registry = redis_lib.Redis.from_url(private_redis.url)
    alice, bob = register(server.url, "alice"), register(server.url, "bob")
    key = keys.connections(bob["user_id"])
    socket_ = connected(server.url, bob)
    assert registry.zcard(key) == 1
    socket_.close()
    wait_until(lambda: registry.zcard(key) == 0, 10, "$disconnect did not forget the connection")
    # A connection API Gateway no longer knows (its $disconnect was lost): posting drops it.
    registry.zadd(key, {"R29uZUZvckdvb2Q=": int(time.time() * 1000) + 3_600_000})
    send(server.url, alice, bob, "to nobody")
    assert registry.zcard(key) == 0


def test_with_redis_down_there_is_no_push_but_sends_and_reads_still_work(servers, tmp_path, private_redis):
    server = servers("down", DATABASE_URL=f"sqlite:///{tmp_path / 'down.sqlite3'}", REDIS_URL=private_redis.url,
                     REDIS_TIMEOUT="0.2")
    alice, bob = register(server.url, "alice"), register(server.url, "bob")
    socket_ = connected(server.url, bob)
    try:
        private_redis.stop()
        send(server.url, alice, bob, "while Redis is down")
        assert [m["text"] for m in read(server.url, bob, after=0)["messages"]] == ["while Redis is down"]
        assert socket_.nothing_within(1.0)
        t = ticket(server.url, bob)
        assert refused_status(f"{t['url']}?ticket={t['ticket']}") == 503  # cannot be registered: long-poll
    finally:
        socket_.close()


def test_a_dead_connection_does_not_slow_a_send_past_the_push_bound(api, monkeypatch, session_redis, caplog):
    """In the app itself: a management endpoint that accepts and never
    answers, and a registered connection to push to."""
    import logging

    from chalicelib import wiring

    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        monkeypatch.setenv("REDIS_URL", session_redis.url)
        monkeypatch.setenv("REDIS_TIMEOUT", "1")
        monkeypatch.setenv("WEBSOCKET_URL", f"ws://127.0.0.1:{silent.getsockname()[1]}/ws")
        monkeypatch.setenv("PUSH_TIMEOUT_SECONDS", "0.5")
        for name, value in {"AWS_ACCESS_KEY_ID": "t", "AWS_SECRET_ACCESS_KEY": "t", "AWS_DEFAULT_REGION": "us-east-1"}.items():
            monkeypatch.setenv(name, value)
        wiring.reset()
        alice, bob = api.register("alice"), api.register("bob")
        redis_lib.Redis.from_url(session_redis.url).zadd(keys.connections(bob.id), {"ZGVhZA==": int(time.time() * 1000) + 3_600_000})
        api.send(alice, bob, "warm-up")  # boto3's first import and client are not the bound under test
        caplog.set_level(logging.WARNING, logger="chalicelib.push")
        caplog.clear()
        started = time.monotonic()
        r = api.send(alice, bob, "to a dead connection")
        elapsed = time.monotonic() - started
        assert r.status == 201 and elapsed < 0.5 + 0.5, elapsed
        # The post was tried and cut at the bound (a send that skipped the push would be fast too).
        assert [m for m in caplog.messages if m.startswith("push: 1 of 1 posts failed or were late")], caplog.text
        assert [m["text"] for m in api.read_all(bob)] == ["warm-up", "to a dead connection"]


def test_deployed_the_api_hands_pushes_to_the_push_lambda_which_has_gone_connections_forgotten(
        servers, tmp_path, private_redis, monkeypatch):
    """The deployed chain, locally: the API (this process, as the in-VPC
    Lambda) invokes `push` asynchronously through the Lambda API (a stand-in
    on its wire format); `push` posts to @connections (the development
    server) and invokes `forget_connections` for the connection found gone."""
    import app as app_module
    from chalicelib import wiring
    from tests.conftest import Api
    from tests.support.lambda_service import LambdaService

    server = servers("ws", DATABASE_URL=f"sqlite:///{tmp_path / 'deployed.sqlite3'}", REDIS_URL=private_redis.url)
    lambdas = LambdaService({"messaging-test-push": app_module.push,
                             "messaging-test-forget_connections": app_module.forget_connections})
    try:
        for name, value in {"DATABASE_URL": f"sqlite:///{tmp_path / 'deployed.sqlite3'}", "REDIS_URL": private_redis.url,
                            "AUTH_SECRET": AUTH_SECRET, "WEBSOCKET_URL": ticket(server.url, register(server.url, "x"))["url"],
                            "PUSH_FUNCTION": "messaging-test-push", "FORGET_FUNCTION": "messaging-test-forget_connections",
                            "AWS_ENDPOINT_URL_LAMBDA": lambdas.url, "AWS_ACCESS_KEY_ID": "t",
                            "AWS_SECRET_ACCESS_KEY": "t", "AWS_DEFAULT_REGION": "us-east-1"}.items():
            monkeypatch.setenv(name, value)
        wiring.reset()
        from chalice.test import Client

        alice, bob = register(server.url, "alice"), register(server.url, "bob")
        socket_ = connected(server.url, bob)
        registry = redis_lib.Redis.from_url(private_redis.url)
        registry.zadd(keys.connections(bob["user_id"]), {"R29uZUFnYWlu": int(time.time() * 1000) + 3_600_000})
        try:
            with Client(app_module.app) as client:
                api = Api(client)
                r = api.post("/send", {"sending_user_id": alice["user_id"], "receiving_user_id": bob["user_id"],
                                       "message_text": "through the push Lambda"}, token=alice["token"])
                assert r.status == 201, r
            assert socket_.next()["message"]["text"] == "through the push Lambda"
            lambdas.wait_finished(2)  # push, then forget_connections
            assert lambdas.invocations == ["messaging-test-push", "messaging-test-forget_connections"]
            assert registry.zrange(keys.connections(bob["user_id"]), 0, -1) != [] and \
                b"R29uZUFnYWlu" not in registry.zrange(keys.connections(bob["user_id"]), 0, -1)
        finally:
            socket_.close()
    finally:
        wiring.reset()
        lambdas.stop()
