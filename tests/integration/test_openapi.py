"""Real responses of the app validate against openapi.yaml's response
schemas and headers (the static checks of the spec are in
tests/unit/test_openapi_spec.py)."""
from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import pytest

from chalicelib import wiring
from chalicelib.repositories import Deliveries
from tests.conftest import TEST_AUTH_SECRET, Api, Resp
from tests.support.openapi import assert_conforms, assert_route_response


def test_unknown_routes_and_wrong_methods_answer_the_envelope_of_the_spec(api):
    alice = api.register("alice")
    for r in (api.post("/nope"), api.post("/nope", token=alice.token), api.get("/registerx")):
        assert_route_response("NotFound", r)
        assert r.code == "NotFound" and "/" in r.body["Message"], r
    r = api.get("/send")
    assert_route_response("MethodNotAllowed", r)
    assert r.headers["Allow"] == "POST" and "GET" in r.body["Message"], r
    r = api.post("/health")
    assert_route_response("MethodNotAllowed", r)
    assert r.headers["Allow"] == "GET, HEAD", r
    r = api.client.http.request("OPTIONS", "/send")
    assert (r.status_code, r.headers["Allow"]) == (204, "POST"), r


# --------------------------------------------------------------------------- (c) real responses


def test_success_responses_conform_to_the_spec(api):
    alice, bob = api.register("alice"), api.register("bob")
    check = assert_conforms
    check("/register", "post", api.post("/register", json_body={"user_name": "carol 👋"}), 201)
    check("/block", "post", api.block(bob, alice, 1), 200)
    check("/block", "post", api.block(bob, alice, 0), 200)
    check("/send", "post", api.send(alice, bob, "hi", client_message_id="k-1"), 201)
    check("/send", "post", api.send(alice, bob, "hi", client_message_id="k-1"), 200)  # "duplicate": true
    r = api.post("/create_group", form={"group_name": "bambis"}, token=alice.token)
    check("/create_group", "post", r, 201)
    group_id = r.body["group_id"]
    check("/update_group", "post", api.join(alice, group_id), 200)
    check("/update_group", "post", api.join(bob, group_id), 200)
    group_send = {"sending_user_id": alice.id, "group_id": group_id, "message_text": "hello"}
    for status in (201, 200):  # new, then an idempotent retry
        r = api.post("/send_group", json_body=group_send, token=alice.token, headers={"Idempotency-Key": "g-1"})
        check("/send_group", "post", r, status)
    read = api.read(bob, after=0, limit=10)
    check("/read_messages", "post", read, 200)
    assert [m["kind"] for m in read.body["messages"]] == ["direct", "group"]
    check("/read_messages", "post", api.read(bob, min_timestamp="2024-07-01 09:10:00.0"), 200)
    check("/read_messages", "post", api.read(alice, min_timestamp="2024-07-01T09:10:00Z"), 200)  # empty page
    check("/health", "get", api.get("/health"), 200)


def test_error_responses_conform_to_the_spec(api, monkeypatch):
    alice, bob, carol = api.register("alice"), api.register("bob"), api.register("carol")
    group_id = api.create_group(alice)
    unknown = "00000000-0000-4000-8000-000000000000"
    check = assert_conforms
    check("/register", "post", api.post("/register"), 400)
    check("/read_messages", "post", api.read(alice, after=0, min_timestamp="2024-07-01"), 400)
    check("/send", "post", api.post("/send", {"sending_user_id": alice.id}), 401)
    check("/read_messages", "post", api.read(alice, user_id=bob.id), 403)  # Forbidden
    api.block(bob, alice)
    check("/send", "post", api.send(alice, bob), 403)  # Blocked
    check("/send_group", "post", api.send_group(carol, group_id), 403)  # NotAMember
    r = api.post("/block", {"blocking_user_id": alice.id, "blocked_user_id": unknown, "to_block": 1}, token=alice.token)
    check("/block", "post", r, 404)  # UserNotFound
    check("/update_group", "post", api.join(alice, unknown), 404)  # GroupNotFound
    api.send(alice, carol, "one", client_message_id="k")
    check("/send", "post", api.send(alice, carol, "two", client_message_id="k"), 409)  # IdempotencyConflict
    big = b'{"group_name": "' + b"x" * 70_000 + b'"}'
    check("/create_group", "post", api.post("/create_group", token=alice.token, raw_body=big), 413)
    r = api.post("/create_group", token=alice.token, raw_body=b"x", headers={"Content-Type": "text/plain"})
    check("/create_group", "post", r, 415)  # answered by Chalice itself
    r = api.client.http.get("/health", headers={"Content-Type": "text/plain"})
    check("/health", "get", Resp(r.status_code, json.loads(r.body), dict(r.headers)), 415)

    monkeypatch.setenv("MAX_GROUP_MEMBERS", "2")
    wiring.reset()
    assert api.join(alice, group_id).status == api.join(bob, group_id).status == 200
    check("/update_group", "post", api.join(carol, group_id), 409)  # GroupFull

    def broken_add(self, *, message, client_message_id):
        raise RuntimeError("boom")

    monkeypatch.setattr(Deliveries, "direct", broken_add)
    check("/send", "post", api.send(carol, alice, "x"), 500)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def api_without_database(monkeypatch) -> Iterator[Api]:
    from chalice.test import Client

    from app import app

    for name in ("REDIS_URL", "MAX_GROUP_MEMBERS", "DB_SECRET_ARN", "AUTH_SECRET_ARN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATABASE_URL", f"mysql://root@127.0.0.1:{_free_port()}/messaging")
    monkeypatch.setenv("AUTH_SECRET", TEST_AUTH_SECRET)
    monkeypatch.setenv("AUTH_MODE", "token")
    wiring.reset()
    with Client(app) as client:
        yield Api(client)
    wiring.reset()


def test_503_responses_conform_to_the_spec(api_without_database):
    api = api_without_database
    assert_conforms("/register", "post", api.post("/register", {"user_name": "shir"}), 503)
    assert_conforms("/health", "get", api.get("/health"), 503)


def test_429_responses_conform_to_the_spec(api, monkeypatch, tmp_path):
    from tests.support.servers import RedisServer

    redis_server = RedisServer(tmp_path).start()
    try:
        monkeypatch.setenv("REDIS_URL", redis_server.url)
        monkeypatch.setenv("REDIS_TIMEOUT", "1")
        monkeypatch.setenv("RATE_LIMIT_READS_PER_MINUTE", "1")
        wiring.reset()
        bob = api.register("bob")
        first = api.read(bob)
        assert_conforms("/read_messages", "post", first, 200)
        assert first.headers["X-Cache"] in ("hit", "miss"), first
        assert_conforms("/read_messages", "post", api.read(bob), 429)
    finally:
        wiring.reset()
        redis_server.stop()



def test_the_web_client_is_served_at_the_root_and_only_its_own_files(api):
    r = api.client.http.get("/")
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/html"), r
    assert b"<html" in r.body
    assert_route_response("MethodNotAllowed", api.post("/"))
    missing = api.get("/static/nothing-here.js")
    assert (missing.status, missing.code) == (404, "NotFound")
    assert api.get("/static/..%2Fweb.py").status == 404
