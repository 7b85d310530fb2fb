"""Real responses of the app validate against openapi.yaml's response
schemas and headers (the static checks of the spec are in
tests/unit/test_openapi_spec.py)."""
from __future__ import annotations

import contextlib
import io
import json
import socket
import uuid
from collections.abc import Iterator
from typing import Optional

import pytest

from chalicelib import wiring
from chalicelib.auth import TokenSigner
from chalicelib.db import Database
from chalicelib.repositories import Deliveries
from chalicelib.settings import Settings
from chalicelib.waitslots import PER_USER, WaitSlots
from tests.conftest import TEST_AUTH_SECRET, Api, Resp
from tests.support.openapi import SPEC, assert_conforms, assert_route_response, operations

PASSWORD = "correct horse battery"


def _handle(prefix: str) -> str:
    """A handle no other test's account has (the database outlives a test)."""
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


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
    check("/connect_ticket", "post", api.post("/connect_ticket", {"user_id": bob.id}, token=bob.token), 200)
    check("/health", "get", api.get("/health"), 200)


def test_account_success_responses_conform_to_the_spec(api):
    check = assert_conforms
    handle, other_handle = _handle("Dan"), _handle("shir")
    r = api.post("/register", json_body={"user_name": "dan", "handle": handle, "password": PASSWORD,
                                         "device_name": "laptop"})
    check("/register", "post", r, 201)
    assert r.body["handle"] == handle.lower(), r
    dan, laptop = r.body, r.body["token"]
    r = api.post("/register", form={"user_name": "shir", "handle": other_handle})  # no password
    check("/register", "post", r, 201)
    shir = r.body
    r = api.post("/login", {"handle": handle.upper(), "password": PASSWORD, "device_name": "phone"})
    check("/login", "post", r, 200)
    phone = r.body["token"]
    assert (r.body["user_id"], r.body["handle"]) == (dan["user_id"], handle.lower())
    r = api.post("/link_code", token=laptop)
    check("/link_code", "post", r, 200)
    typed = r.body["code"].lower().replace("-", " ")  # as typed by hand: any case, any separator
    r = api.post("/link", form={"code": typed, "device_name": "tablet"})
    check("/link", "post", r, 200)
    tablet_session = r.body["session_id"]
    r = api.post("/sessions", token=laptop)
    check("/sessions", "post", r, 200)
    assert [(s["device_name"], s["current"]) for s in r.body["sessions"]] == [
        ("laptop", True), ("phone", False), ("tablet", False)], r
    r = api.post("/logout", {"session_id": tablet_session}, token=laptop)
    check("/logout", "post", r, 200)
    assert r.body == {"revoked": 1}
    r = api.post("/logout", {"session_id": str(uuid.uuid4())}, token=laptop)  # not the caller's: 0
    check("/logout", "post", r, 200)
    assert r.body == {"revoked": 0}
    check("/logout", "post", api.post("/logout", token=phone), 200)  # this device
    r = api.post("/account", token=laptop)
    check("/account", "post", r, 200)
    assert r.body == {"user_id": dan["user_id"], "user_name": "dan", "handle": handle.lower(), "has_password": True,
                      "read_receipts": True}, r
    r = api.post("/account", token=shir["token"])
    check("/account", "post", r, 200)
    assert (r.body["has_password"], r.body["read_receipts"]) == (False, True), r
    check("/update_account", "post", api.post("/update_account", {"user_name": "Dan K"}, token=laptop), 200)
    r = api.post("/update_account", json_body={"password": PASSWORD + "!", "current_password": PASSWORD},
                 token=laptop)
    check("/update_account", "post", r, 200)
    assert r.body == {"user_id": dan["user_id"], "user_name": "Dan K", "handle": handle.lower(), "has_password": True,
                      "read_receipts": True}, r
    r = api.post("/update_account", json_body={"read_receipts": False}, token=laptop)
    check("/update_account", "post", r, 200)
    assert r.body["read_receipts"] is False, r
    r = api.post("/update_account", form={"read_receipts": "1"}, token=laptop)
    check("/update_account", "post", r, 200)
    assert r.body["read_receipts"] is True, r
    check("/account", "post", api.post("/account", json_body={"ignored": 1}, token=laptop), 200)
    r = api.post("/users", {"user_ids": f"{dan['user_id']}, {shir['user_id'].upper()},{uuid.uuid4()}"},
                 token=shir["token"])
    check("/users", "post", r, 200)
    assert [u["handle"] for u in r.body["users"]] == [handle.lower(), other_handle], r  # the unknown id left out
    r = api.post("/find_user", {"handle": other_handle.upper()}, token=laptop)
    check("/find_user", "post", r, 200)
    assert r.body == {"user_id": shir["user_id"], "user_name": "shir", "handle": other_handle}, r
    r = api.post("/delete_account", {"password": PASSWORD + "!"}, token=laptop)
    check("/delete_account", "post", r, 200)
    check("/logout", "post", api.post("/logout", {"all": 1}, token=shir["token"]), 200)


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


def test_account_error_responses_conform_to_the_spec(api, monkeypatch):
    check = assert_conforms
    handle = _handle("dan")
    dan = api.post("/register", {"user_name": "dan", "handle": handle, "password": PASSWORD}).body
    token = dan["token"]
    shir = api.register("shir")
    check("/register", "post", api.post("/register", {"user_name": "d2", "handle": handle.upper()}), 409)
    check("/register", "post", api.post("/register", {"user_name": "d3", "password": PASSWORD}), 400)  # no handle
    check("/register", "post", api.post("/register", {"user_name": "d4", "handle": "9lives"}), 400)
    check("/login", "post", api.post("/login", {"handle": handle, "password": "wrong password"}), 401)
    r = api.post("/login", {"handle": _handle("nobody"), "password": PASSWORD})
    check("/login", "post", r, 401)
    assert r.code == "BadCredentials" and "WWW-Authenticate" not in r.headers, r
    check("/login", "post", api.post("/login", {"handle": "x", "password": PASSWORD}), 400)
    check("/link", "post", api.post("/link", {"code": "00000-00000"}), 401)  # BadCredentials
    check("/link", "post", api.post("/link"), 400)
    r = api.post("/link_code")
    check("/link_code", "post", r, 401)
    assert r.code == "Unauthorized" and r.headers["WWW-Authenticate"] == 'Bearer realm="messaging"', r
    check("/users", "post", api.post("/users", {"user_ids": shir.id}), 401)
    check("/find_user", "post", api.post("/find_user", {"handle": handle}), 401)
    check("/update_account", "post", api.post("/update_account", {"user_name": "x"}), 401)  # Unauthorized
    check("/logout", "post", api.post("/logout", {"session_id": dan["session_id"], "all": 1}, token=token), 400)
    check("/update_account", "post", api.post("/update_account", token=token), 400)  # nothing to change
    check("/update_account", "post", api.post("/update_account", {"handle": _handle("d")}, token=token), 400)
    r = api.post("/update_account", {"password": "a new password", "current_password": "not it"}, token=token)
    check("/update_account", "post", r, 401)
    assert r.code == "BadCredentials", r
    r = api.post("/update_account", {"handle": shir.name + _handle("")}, token=shir.token)
    assert r.status == 200, r
    check("/update_account", "post", api.post("/update_account", {"handle": handle}, token=shir.token), 409)
    check("/delete_account", "post", api.post("/delete_account", token=token), 400)  # password missing
    r = api.post("/delete_account", {"password": "not it"}, token=token)
    check("/delete_account", "post", r, 401)
    assert r.code == "BadCredentials", r
    ids = ",".join(str(uuid.uuid4()) for _ in range(101))
    check("/users", "post", api.post("/users", {"user_ids": ids}, token=token), 400)
    check("/find_user", "post", api.post("/find_user", {"handle": _handle("nobody")}, token=token), 404)
    check("/find_user", "post", api.post("/find_user", {"handle": "no spaces"}, token=token), 400)
    big = b'{"device_name": "' + b"x" * 70_000 + b'"}'
    check("/login", "post", api.post("/login", raw_body=big), 413)
    r = api.post("/find_user", token=token, raw_body=b"x", headers={"Content-Type": "text/plain"})
    check("/find_user", "post", r, 415)

    # A signed-out session: 401 on every route that takes a token, /sessions included.
    assert api.post("/logout", token=token).body == {"revoked": 1}
    for path in ("/sessions", "/link_code", "/logout", "/update_account", "/delete_account", "/users"):
        r = api.post(path, {"user_ids": shir.id}, token=token)
        check(path, "post", r, 401)
        assert r.code == "Unauthorized" and 'error="invalid_token"' in r.headers["WWW-Authenticate"], (path, r)
    r = api.post("/send", {"sending_user_id": dan["user_id"], "receiving_user_id": shir.id, "message_text": "hi"},
                 token=token)
    check("/send", "post", r, 401)

    # Sending to a deleted user: 404.
    carol = api.register("carol")
    assert api.post("/delete_account", token=carol.token).body == {"deleted": True}
    check("/send", "post", api.send(shir, carol), 404)


def test_sign_in_limits_conform_to_the_spec(api, monkeypatch):
    monkeypatch.setenv("SIGN_IN_FAILURES_PER_HANDLE", "1")
    monkeypatch.setenv("SIGN_IN_FAILURES_PER_SOURCE", "10")
    wiring.reset()
    check = assert_conforms
    handle = _handle("dan")
    dan = api.post("/register", {"user_name": "dan", "handle": handle, "password": PASSWORD}).body
    check("/update_account", "post", api.post("/update_account", {"handle": _handle("d"), "current_password": "no"},
                                              token=dan["token"]), 401)
    for path, params, token in (
        ("/login", {"handle": handle, "password": PASSWORD}, None),  # the right password, refused all the same
        ("/update_account", {"password": "a new password", "current_password": PASSWORD}, dan["token"]),
        ("/delete_account", {"password": PASSWORD}, dan["token"]),
    ):
        r = api.post(path, params, token=token)
        check(path, "post", r, 429)
        assert r.code == "RateLimited", (path, r)
    for _ in range(9):  # the source's other failures: link codes
        assert api.post("/link", {"code": "00000-00000"}).status == 401
    check("/link", "post", api.post("/link", {"code": "00000-00000"}), 429)


def test_with_auth_mode_none_the_account_routes_answer_403_as_the_spec_says(api, monkeypatch):
    alice = api.register("alice")
    monkeypatch.setenv("AUTH_MODE", "none")
    wiring.reset()
    calls = {"/login": {"handle": "alice_h", "password": PASSWORD}, "/link_code": {}, "/link": {"code": "00000-00000"},
             "/sessions": {}, "/logout": {}, "/account": {}, "/update_account": {"user_name": "x"},
             "/delete_account": {}}
    for path, params in calls.items():
        r = api.post(path, params)
        assert_conforms(path, "post", r, 403)
        assert "AUTH_MODE=none" in r.body["Message"], (path, r)
    assert_conforms("/users", "post", api.post("/users", {"user_ids": alice.id}), 200)
    assert_conforms("/register", "post", api.post("/register", {"user_name": "bob"}), 201)


def test_the_routes_the_spec_marks_public_are_the_ones_that_need_no_token(api):
    for path, method, operation in operations():
        if method != "post":
            continue
        r = api.post(path)
        public = operation.get("security") == []
        assert (r.code == "Unauthorized") is not public, (path, r)
    assert SPEC["security"] == [{"bearerAuth": []}]


# --------------------------------------------------------------------------- the stream


@pytest.fixture
def stream_api(api, app_env, monkeypatch, request) -> Api:
    """The api helper on SQLite (no cache) and on MariaDB with Redis, so
    /sync pages served from the cache are checked too."""
    if app_env["DATABASE_URL"].startswith("mysql"):
        monkeypatch.setenv("REDIS_URL", request.getfixturevalue("session_redis").url)
        monkeypatch.setenv("REDIS_TIMEOUT", "1")
        wiring.reset()
    return api


def _sent(r: Resp) -> str:
    assert r.status == 201, r
    return r.body["message_id"]


def _sync_all(api: Api, user, check, paths: Optional[set] = None) -> list:
    """Every event of the user's stream, each page checked against the spec
    (and which path served it added to `paths`)."""
    events, after = [], 0
    while True:
        r = api.post("/sync", {"after": after, "limit": 3}, token=user.token)
        check("/sync", "post", r, 200)
        if paths is not None:
            paths.add(r.headers["X-Cache"])
        events += r.body["events"]
        after = r.body["next_after"]
        if not r.body["has_more"]:
            return events


def _run_sql(app_env, sql: str, params: tuple) -> None:
    db = Database(Settings.from_env({"DATABASE_URL": app_env["DATABASE_URL"]}))
    try:
        db.run(lambda tx: tx.execute(sql, params), write=True)
    finally:
        db.close()


class _Scenario:
    """Users, groups and messages whose streams hold every event type."""

    def __init__(self, api: Api, check) -> None:
        alice, bob, carol, dave = (api.register(name) for name in ("alice", "bob", "carol", "dave"))
        self.alice, self.bob, self.carol, self.dave = alice, bob, carol, dave
        self.group = group = api.create_group(alice, "stream group")
        for user in (alice, bob, carol):
            assert api.join(user, group).status == 200
        assert api.join(carol, group, 0).status == 200  # member: false
        self.quiet = api.create_group(bob, "quiet")  # a group without messages: last_message null
        assert api.join(bob, self.quiet).status == 200
        self.direct = direct = _sent(api.send(alice, bob, "hello"))
        reply = _sent(api.send(bob, alice, "hi alice"))
        _sent(api.send(alice, alice, "a note to self"))
        grouped = _sent(api.send_group(bob, group, "hi all"))
        erased_after_edit = _sent(api.send(alice, bob, "soon edited, then deleted"))
        _sent(api.send(dave, bob, "from an account about to go"))
        assert api.post("/delete_account", token=dave.token).status == 200  # its conversation's name: null

        r = api.post("/edit_message", {"message_id": direct, "message_text": "hello, edited"}, token=alice.token)
        check("/edit_message", "post", r, 200)
        r = api.post("/edit_message", json_body={"user_id": alice.id, "message_id": erased_after_edit,
                                                 "message_text": "edited"}, token=alice.token)
        check("/edit_message", "post", r, 200)
        r = api.post("/delete_message", form={"message_id": erased_after_edit}, token=alice.token)
        check("/delete_message", "post", r, 200)
        assert r.body == {"message_id": erased_after_edit, "deleted": True}, r
        for _ in range(2):  # idempotent
            r = api.post("/delete_message", {"message_id": grouped}, token=bob.token)
            check("/delete_message", "post", r, 200)
        r = api.post("/mark_read", {"with_user_id": alice.id, "message_id": direct}, token=bob.token)
        check("/mark_read", "post", r, 200)  # a read event to bob, a receipt to alice
        assert r.body == {"message_id": direct}, r
        r = api.post("/mark_read", json_body={"group_id": group, "message_id": grouped}, token=alice.token)
        check("/mark_read", "post", r, 200)  # a read event of a group
        r = api.post("/mark_read", form={"with_user_id": bob.id, "message_id": reply, "user_id": alice.id},
                     token=alice.token)
        check("/mark_read", "post", r, 200)
        r = api.post("/mark_read", {"with_user_id": alice.id, "message_id": direct}, token=bob.token)
        check("/mark_read", "post", r, 200)  # not a move: nothing changes


def test_stream_success_responses_conform_to_the_spec(stream_api):
    """/edit_message, /delete_message and /mark_read (in _Scenario),
    /conversations, /history and /group_info."""
    api, check = stream_api, assert_conforms
    s = _Scenario(api, check)
    alice, bob, dave, group, quiet = s.alice, s.bob, s.dave, s.group, s.quiet
    _sent(api.send(alice, bob, "not read yet"))  # unread: this one, not the deleted one before it

    # /conversations: paged; a deleted account's name is null, a group without messages has no last message.
    conversations, before = [], None
    while True:
        r = api.post("/conversations", {"limit": 2, **({"before": before} if before else {})}, token=bob.token)
        check("/conversations", "post", r, 200)
        conversations += r.body["conversations"]
        before = r.body["next_before"]
        if before is None:
            break
    by_id = {c["id"]: c for c in conversations}
    assert set(by_id) == {alice.id, dave.id, group, quiet}, conversations
    assert (by_id[dave.id]["name"], by_id[quiet]["last_message"]) == (None, None), conversations
    assert (by_id[alice.id]["read_up_to"], by_id[alice.id]["unread"]) == (s.direct, 1), conversations
    r = api.post("/conversations", json_body={"limit": "100"}, token=alice.token)
    check("/conversations", "post", r, 200)
    assert {c["id"] for c in r.body["conversations"]} == {alice.id, bob.id, group}, r

    # /history: paged, newest first; a group's; notes to self; an unknown conversation's is empty.
    r = api.post("/history", {"with_user_id": alice.id, "limit": 1}, token=bob.token)
    check("/history", "post", r, 200)
    assert r.body["next_before_seq"] is not None, r
    r = api.post("/history", json_body={"with_user_id": alice.id, "before_seq": r.body["next_before_seq"]},
                 token=bob.token)
    check("/history", "post", r, 200)
    assert r.body["next_before_seq"] is None and r.body["messages"], r
    r = api.post("/history", form={"group_id": group}, token=bob.token)
    check("/history", "post", r, 200)
    assert [(m["deleted"], m["text"]) for m in r.body["messages"]] == [(True, None)], r
    r = api.post("/history", {"with_user_id": alice.id}, token=alice.token)
    check("/history", "post", r, 200)
    assert [m["text"] for m in r.body["messages"]] == ["a note to self"], r
    r = api.post("/history", {"with_user_id": str(uuid.uuid4())}, token=bob.token)
    check("/history", "post", r, 200)
    assert r.body == {"messages": [], "next_before_seq": None}, r

    # /group_info: paged by user id.
    r = api.post("/group_info", {"group_id": group, "limit": 1}, token=bob.token)
    check("/group_info", "post", r, 200)
    assert (r.body["member_count"], len(r.body["members"])) == (2, 1) and r.body["next_after_user_id"], r
    r = api.post("/group_info", json_body={"group_id": group, "after_user_id": r.body["next_after_user_id"]},
                 token=bob.token)
    check("/group_info", "post", r, 200)
    assert r.body["next_after_user_id"] is None and len(r.body["members"]) == 1, r


def test_sync_success_responses_conform_to_the_spec(stream_api, app_env, monkeypatch):
    """Every event type, paged, in both users' streams (with Redis, again
    from the cache), with its X-Cache and X-Wait-Refused headers."""
    api, check = stream_api, assert_conforms
    s = _Scenario(api, check)
    alice, bob = s.alice, s.bob
    paths: set = set()
    for _ in range(2):
        seen = {e["type"] for user in (alice, bob) for e in _sync_all(api, user, check, paths)}
        assert seen == {"message", "edit", "delete", "read", "receipt", "member"}, seen
    assert paths == ({"miss", "hit"} if app_env["DATABASE_URL"].startswith("mysql") else {"off"}), paths
    events = _sync_all(api, alice, check)
    assert any(e["type"] == "member" and e["member"] is False for e in events), events
    assert any(e["type"] == "edit" and e["text"] is None for e in events), events  # edited, then deleted
    assert any(e["type"] == "message" and e["deleted"] and e["text"] is None for e in events), events
    assert any(e["type"] == "message" and e["sender_id"] == e["recipient_id"] for e in events), events
    assert any(e["type"] == "read" and e["group_id"] for e in events), events
    newest = events[-1]["seq"]
    r = api.post("/sync", json_body={"after": str(newest), "limit": 1000}, token=alice.token)
    check("/sync", "post", r, 200)  # an empty page
    assert (r.body["events"], r.body["next_after"], r.body["has_more"]) == ([], newest, False), r
    r = api.post("/sync", form={"user_id": alice.id, "after": "0", "limit": "2", "wait": "0"}, token=alice.token)
    check("/sync", "post", r, 200)
    assert r.body["has_more"] is True, r

    @contextlib.contextmanager
    def refused(self, user_id, *, seconds):  # as if the user held the most waiting reads already
        yield PER_USER

    with monkeypatch.context() as patch:
        patch.setattr(WaitSlots, "take", refused)
        r = api.post("/sync", {"after": newest, "wait": 5}, token=alice.token)
        check("/sync", "post", r, 200)
        assert r.headers["X-Wait-Refused"] == "per-user", r

    monkeypatch.setenv("AUTH_MODE", "none")  # user_id names the user
    wiring.reset()
    check("/sync", "post", api.post("/sync", {"user_id": bob.id}), 200)


def test_stream_error_responses_conform_to_the_spec(stream_api, app_env, monkeypatch):
    api, check = stream_api, assert_conforms
    alice, bob, carol = api.register("alice"), api.register("bob"), api.register("carol")
    group = api.create_group(alice)
    assert api.join(alice, group).status == 200
    message = _sent(api.send(alice, bob, "mine"))
    unknown = str(uuid.uuid4())

    for path, params in (("/sync", {}), ("/edit_message", {"message_id": message, "message_text": "x"}),
                         ("/delete_message", {"message_id": message}), ("/conversations", {}),
                         ("/mark_read", {"message_id": message, "with_user_id": alice.id}),
                         ("/history", {"with_user_id": alice.id}), ("/group_info", {"group_id": group})):
        r = api.post(path, params)
        check(path, "post", r, 401)
        r = api.post(path, {**params, "user_id": bob.id}, token=carol.token)
        check(path, "post", r, 403)
        assert r.code == "Forbidden", (path, r)
        check(path, "post", api.post(path, {**params, "user_id": "not an id"}, token=carol.token), 400)
        big = json.dumps({**params, "padding": "x" * 70_000}).encode()
        check(path, "post", api.post(path, token=carol.token, raw_body=big), 413)
        r = api.post(path, token=carol.token, raw_body=b"x", headers={"Content-Type": "text/plain"})
        check(path, "post", r, 415)

    check("/sync", "post", api.post("/sync", {"limit": 1001}, token=bob.token), 400)
    r = api.post("/sync", {"after": 100}, token=bob.token)
    check("/sync", "post", r, 409)
    assert r.code == "CursorAhead", r
    check("/mark_read", "post", api.post("/mark_read", {"message_id": message, "with_user_id": alice.id,
                                                        "group_id": group}, token=bob.token), 400)
    check("/history", "post", api.post("/history", token=bob.token), 400)
    check("/conversations", "post", api.post("/conversations", {"limit": 101}, token=bob.token), 400)
    check("/group_info", "post", api.post("/group_info", {"group_id": group, "limit": 501}, token=alice.token), 400)
    r = api.post("/edit_message", {"message_id": message, "message_text": "bob's"}, token=bob.token)
    check("/edit_message", "post", r, 403)
    assert r.code == "Forbidden", r
    check("/delete_message", "post", api.post("/delete_message", {"message_id": message}, token=bob.token), 403)
    r = api.post("/group_info", {"group_id": group}, token=carol.token)
    check("/group_info", "post", r, 403)
    assert r.code == "NotAMember", r
    check("/group_info", "post", api.post("/group_info", {"group_id": unknown}, token=carol.token), 404)
    for path, params, token in (
        ("/edit_message", {"message_id": message, "message_text": "x"}, carol.token),
        ("/delete_message", {"message_id": unknown}, alice.token),
        ("/mark_read", {"message_id": message, "group_id": group}, bob.token),  # not in that conversation
    ):
        r = api.post(path, params, token=token)
        check(path, "post", r, 404)
        assert r.code == "MessageNotFound", (path, r)
    old = _sent(api.send(alice, bob, "sent long ago"))
    _run_sql(app_env, "UPDATE messages SET sent_at = %s WHERE id = %s", ("2020-01-01 00:00:00.000000", old))
    r = api.post("/edit_message", {"message_id": old, "message_text": "too late"}, token=alice.token)
    check("/edit_message", "post", r, 409)
    assert r.code == "EditWindowClosed", r
    assert api.post("/delete_message", {"message_id": old}, token=alice.token).status == 200
    r = api.post("/edit_message", {"message_id": old, "message_text": "back"}, token=alice.token)
    check("/edit_message", "post", r, 409)
    assert r.code == "MessageDeleted", r

    monkeypatch.setenv("RATE_LIMIT_READS_PER_MINUTE", "1")
    monkeypatch.setenv("RATE_LIMIT_SENDS_PER_MINUTE", "1")
    monkeypatch.setenv("RATE_LIMIT_WRITES_PER_MINUTE", "1")
    wiring.reset()
    dave = api.register("dave")
    other = _sent(api.send(dave, alice, "one send a minute"))
    assert api.post("/sync", token=dave.token).status == 200  # the one read a minute
    for path, params in (("/sync", {}), ("/conversations", {}), ("/history", {"with_user_id": alice.id}),
                         ("/group_info", {"group_id": group}),
                         ("/edit_message", {"message_id": other, "message_text": "x"}),
                         ("/delete_message", {"message_id": other})):
        r = api.post(path, params, token=dave.token)
        check(path, "post", r, 429)
        assert r.code == "RateLimited", (path, r)
    assert api.post("/mark_read", {"message_id": other, "with_user_id": dave.id}, token=alice.token).status == 200
    r = api.post("/mark_read", {"message_id": other, "with_user_id": dave.id}, token=alice.token)
    check("/mark_read", "post", r, 429)


# --------------------------------------------------------------------------- attachments


@pytest.fixture
def attaching_api(stream_api, monkeypatch, tmp_path) -> Api:
    """The stream's api with the app's local attachment store (no
    ATTACHMENTS_BUCKET, not in a Lambda): its files beside the SQLite
    database, or, on MariaDB, under tmp_path rather than data/attachments."""
    for name in ("ATTACHMENTS_BUCKET", "ATTACHMENTS_S3_ENDPOINT", "AWS_LAMBDA_FUNCTION_NAME", "MAX_ATTACHMENT_BYTES",
                 "ATTACHMENT_TYPES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(wiring, "DATA_DIR", tmp_path)
    wiring.reset()
    return stream_api


def _upload(api: Api, user, data: bytes, check, **params) -> str:
    """Ask /upload_url for a form (checked against the spec), then store the
    file as the development server's /_uploads does: through the app's own
    local store, with the fields it answered."""
    params.setdefault("content_type", "image/png")
    r = api.post("/upload_url", {"size": len(data), **params}, token=user.token)
    check("/upload_url", "post", r, 200)
    assert r.body["upload"]["url"] == "/_uploads" and r.body["expires_in"] == 600, r
    store = wiring.service().attaching.local_store
    assert store is not None
    store.accept(r.body["upload"]["fields"], io.BytesIO(data))
    return r.body["attachment_id"]


def _with_attachments(items: list) -> list:
    return [m for m in items if m and m["attachments"]]


def test_attachment_success_responses_conform_to_the_spec(attaching_api, app_env):
    """/upload_url and /download_url, and messages carrying attachments in
    /read_messages, /sync (with Redis, from the cache too), /history and
    /conversations; empty once deleted."""
    api, check = attaching_api, assert_conforms
    alice, bob = api.register("alice"), api.register("bob")
    group = api.create_group(alice, "pictures")
    for user in (alice, bob):
        assert api.join(user, group).status == 200
    picture = _upload(api, alice, b"\x89PNG", check, content_type=" Image/PNG ", file_name="cat 🐈.png")
    r = api.post("/upload_url", json_body={"user_id": alice.id, "content_type": "text/plain", "size": "5"},
                 token=alice.token)  # no file_name; size as digits
    check("/upload_url", "post", r, 200)
    note = r.body["attachment_id"]
    wiring.service().attaching.local_store.accept(r.body["upload"]["fields"], io.BytesIO(b"note"))  # 4 of 5 bytes
    document = _upload(api, alice, b"%PDF-1.7", check, content_type="application/pdf", file_name="report.pdf")
    alone = _upload(api, alice, b"GIF89a", check, content_type="image/gif")

    # /send with text and attachments (form body), again with its key: the original, "duplicate": true.
    direct = {"sending_user_id": alice.id, "receiving_user_id": bob.id, "message_text": "look",
              "attachment_ids": f"{picture}, {note.upper()}", "client_message_id": "with-files"}
    for status in (201, 200):
        check("/send", "post", api.post("/send", form=direct, token=alice.token), status)
    # /send_group with attachments alone (JSON body): its text is "".
    r = api.post("/send_group", json_body={"sending_user_id": alice.id, "group_id": group,
                                           "attachment_ids": document}, token=alice.token)
    check("/send_group", "post", r, 201)
    r = api.post("/send", {"sending_user_id": alice.id, "receiving_user_id": bob.id, "attachment_ids": alone},
                 token=alice.token)
    check("/send", "post", r, 201)
    erased = r.body["message_id"]
    _sent(api.send(bob, alice, "no files"))

    r = api.read(bob, after=0, limit=10)
    check("/read_messages", "post", r, 200)
    carried = [(m["text"], m["attachments"]) for m in r.body["messages"]]
    assert carried == [
        ("look", [{"attachment_id": picture, "content_type": "image/png", "size": 4, "file_name": "cat 🐈.png"},
                  {"attachment_id": note, "content_type": "text/plain", "size": 4, "file_name": None}]),
        ("", [{"attachment_id": document, "content_type": "application/pdf", "size": 8, "file_name": "report.pdf"}]),
        ("", [{"attachment_id": alone, "content_type": "image/gif", "size": 6, "file_name": None}]),
    ], r

    # /download_url: by the recipient and by the sender, a member of the group, in each kind of body.
    for user, params in ((bob, {"attachment_id": picture}), (alice, {"attachment_id": note, "user_id": alice.id}),
                         (bob, {"attachment_id": document})):
        r = api.post("/download_url", params, token=user.token)
        check("/download_url", "post", r, 200)
        assert r.body["url"].startswith("/_files/") and r.body["expires_in"] == 300, r
    check("/download_url", "post", api.post("/download_url", json_body={"attachment_id": alone}, token=bob.token), 200)
    r = api.post("/download_url", form={"attachment_id": alone.upper(), "user_id": alice.id}, token=alice.token)
    check("/download_url", "post", r, 200)

    # Deleted: no attachments any more, and no download.
    assert api.post("/delete_message", {"message_id": erased}, token=alice.token).status == 200
    r = api.post("/download_url", {"attachment_id": alone}, token=bob.token)
    check("/download_url", "post", r, 404)
    assert r.code == "AttachmentNotFound", r

    for _ in range(2):  # with Redis, the second time from the cache
        for user in (alice, bob):
            events = _sync_all(api, user, check)
            messages = [e for e in events if e["type"] == "message"]
            assert [len(e["attachments"]) for e in messages] == [2, 1, 0, 0], messages
            assert [(e["deleted"], e["text"]) for e in messages[2:]] == [(True, None), (False, "no files")], messages
    r = api.post("/history", {"with_user_id": alice.id}, token=bob.token)
    check("/history", "post", r, 200)
    assert [len(m["attachments"]) for m in r.body["messages"]] == [0, 0, 2], r  # newest first
    r = api.post("/history", {"group_id": group}, token=bob.token)
    check("/history", "post", r, 200)
    assert _with_attachments(r.body["messages"])[0]["attachments"][0]["attachment_id"] == document, r
    r = api.post("/conversations", token=bob.token)
    check("/conversations", "post", r, 200)
    last = [c["last_message"] for c in r.body["conversations"]]
    assert [m["attachments"] for m in _with_attachments(last)] == [[
        {"attachment_id": document, "content_type": "application/pdf", "size": 8, "file_name": "report.pdf"}]], r


def test_attachment_error_responses_conform_to_the_spec(attaching_api, monkeypatch):
    api, check = attaching_api, assert_conforms
    alice, bob, carol = api.register("alice"), api.register("bob"), api.register("carol")
    group = api.create_group(alice)
    assert api.join(alice, group).status == 200
    upload = {"content_type": "image/png", "size": 4}

    # /upload_url
    check("/upload_url", "post", api.post("/upload_url", upload), 401)
    r = api.post("/upload_url", {**upload, "user_id": bob.id}, token=alice.token)
    check("/upload_url", "post", r, 403)
    assert r.code == "Forbidden", r
    for params, named in (({"size": 4}, "content_type"), ({**upload, "content_type": "text/html"}, "content_type"),
                          ({**upload, "content_type": "image/png; q=1"}, "content_type"),
                          ({"content_type": "image/png"}, "size"), ({**upload, "size": 0}, "size"),
                          ({**upload, "file_name": "x" * 256}, "file_name"),
                          ({**upload, "file_name": " "}, "file_name")):
        r = api.post("/upload_url", params, token=alice.token)
        check("/upload_url", "post", r, 400)
        assert named in r.body["Message"], (params, r)
    big = json.dumps({**upload, "padding": "x" * 70_000}).encode()
    check("/upload_url", "post", api.post("/upload_url", token=alice.token, raw_body=big), 413)
    r = api.post("/upload_url", token=alice.token, raw_body=b"x", headers={"Content-Type": "text/plain"})
    check("/upload_url", "post", r, 415)

    # /download_url
    mine = _upload(api, alice, b"\x89PNG", check)
    check("/download_url", "post", api.post("/download_url", {"attachment_id": mine}), 401)
    r = api.post("/download_url", {"attachment_id": mine, "user_id": bob.id}, token=alice.token)
    check("/download_url", "post", r, 403)
    check("/download_url", "post", api.post("/download_url", token=alice.token), 400)
    check("/download_url", "post", api.post("/download_url", {"attachment_id": "nope"}, token=alice.token), 400)
    for attachment_id, user in ((str(uuid.uuid4()), alice), (mine, alice)):  # unknown; uploaded, never attached
        r = api.post("/download_url", {"attachment_id": attachment_id}, token=user.token)
        check("/download_url", "post", r, 404)
        assert r.code == "AttachmentNotFound", r

    # /send and /send_group
    r = api.post("/send", {"sending_user_id": alice.id, "receiving_user_id": bob.id}, token=alice.token)
    check("/send", "post", r, 400)
    assert "message_text" in r.body["Message"], r
    r = api.post("/send_group", json_body={"sending_user_id": alice.id, "group_id": group, "attachment_ids": None},
                 token=alice.token)
    check("/send_group", "post", r, 400)
    assert "message_text" in r.body["Message"], r
    eleven = ",".join(str(uuid.uuid4()) for _ in range(11))
    r = api.send(alice, bob, "x", attachment_ids=eleven)
    check("/send", "post", r, 400)
    assert "attachment_ids" in r.body["Message"], r
    r = api.send(alice, bob, "x", attachment_ids=f"{mine},not-an-id")
    check("/send", "post", r, 400)
    pending = api.post("/upload_url", upload, token=alice.token).body["attachment_id"]  # never uploaded
    bobs = _upload(api, bob, b"\x89PNG", check)
    for ids, why in ((pending, "not been uploaded"), (bobs, "not an upload of yours"),
                     (str(uuid.uuid4()), "not an upload of yours")):
        r = api.send(alice, bob, "x", attachment_ids=ids)
        check("/send", "post", r, 409)
        assert r.code == "AttachmentNotReady" and why in r.body["Message"], (ids, r)
    r = api.send_group(alice, group, "x", attachment_ids=pending)
    check("/send_group", "post", r, 409)
    assert r.code == "AttachmentNotReady", r
    _sent(api.send(alice, bob, "x", attachment_ids=mine, client_message_id="files-1"))
    r = api.send(alice, carol, "again", attachment_ids=mine)
    check("/send", "post", r, 409)
    assert r.code == "AttachmentNotReady" and "already attached" in r.body["Message"], r
    other = _upload(api, alice, b"\x89PNG", check)
    r = api.send(alice, bob, "x", attachment_ids=other, client_message_id="files-1")  # the key, other files
    check("/send", "post", r, 409)
    assert r.code == "IdempotencyConflict", r
    r = api.post("/download_url", {"attachment_id": mine}, token=carol.token)  # not in carol's stream
    check("/download_url", "post", r, 404)

    # Over MAX_ATTACHMENT_BYTES, and over the rate limits (writes for uploads, reads for downloads).
    monkeypatch.setenv("MAX_ATTACHMENT_BYTES", "10")
    monkeypatch.setenv("RATE_LIMIT_WRITES_PER_MINUTE", "1")
    monkeypatch.setenv("RATE_LIMIT_READS_PER_MINUTE", "1")
    wiring.reset()
    r = api.post("/upload_url", {**upload, "size": 11}, token=alice.token)
    check("/upload_url", "post", r, 413)
    assert r.code == "PayloadTooLarge" and "size" in r.body["Message"], r
    dave = api.register("dave")
    check("/upload_url", "post", api.post("/upload_url", upload, token=dave.token), 200)
    r = api.post("/upload_url", upload, token=dave.token)
    check("/upload_url", "post", r, 429)
    assert r.code == "RateLimited", r
    check("/download_url", "post", api.post("/download_url", {"attachment_id": mine}, token=bob.token), 200)
    r = api.post("/download_url", {"attachment_id": mine}, token=bob.token)
    check("/download_url", "post", r, 429)
    assert r.code == "RateLimited", r


def test_without_attachment_storage_the_routes_answer_503_as_the_spec_says(api, monkeypatch):
    """In a Lambda without ATTACHMENTS_BUCKET the server stores no files."""
    alice, bob = api.register("alice"), api.register("bob")
    monkeypatch.delenv("ATTACHMENTS_BUCKET", raising=False)
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "messaging-test")
    wiring.reset()
    assert wiring.service().attaching.local_store is None
    for path, params in (("/upload_url", {"content_type": "image/png", "size": 4}),
                         ("/download_url", {"attachment_id": str(uuid.uuid4())})):
        r = api.post(path, params, token=alice.token)
        assert_conforms(path, "post", r, 503)
        assert "ATTACHMENTS_BUCKET" in r.body["Message"], r
    r = api.send(alice, bob, "x", attachment_ids=str(uuid.uuid4()))
    assert_conforms("/send", "post", r, 503)
    assert_conforms("/send", "post", api.send(alice, bob, "text alone still goes"), 201)


def test_without_tokens_the_stream_routes_answer_as_the_spec_says(api, monkeypatch):
    alice = api.register("alice")
    assert api.send(alice, alice, "note").status == 201
    monkeypatch.setenv("AUTH_MODE", "none")
    wiring.reset()
    r = api.post("/sync")
    assert_conforms("/sync", "post", r, 400)  # user_id required
    assert "user_id" in r.body["Message"], r
    assert_conforms("/conversations", "post", api.post("/conversations", {"user_id": alice.id}), 200)
    assert_conforms("/history", "post", api.post("/history", {"user_id": alice.id, "with_user_id": alice.id}), 200)
    r = api.post("/account")
    assert_conforms("/account", "post", r, 403)  # accounts are off
    r = api.post("/sync", {"user_id": str(uuid.uuid4())})
    assert_conforms("/sync", "post", r, 404)
    assert r.code == "UserNotFound", r


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
    assert_conforms("/login", "post", api.post("/login", {"handle": "shir", "password": PASSWORD}), 503)
    assert_conforms("/link", "post", api.post("/link", {"code": "00000-00000"}), 503)
    assert_conforms("/health", "get", api.get("/health"), 503)
    # A token's session is looked up in the database on every route that takes one.
    user_id = str(uuid.uuid4())
    token = TokenSigner([TEST_AUTH_SECRET]).issue(user_id, str(uuid.uuid4()))
    for path, params in (("/sessions", {}), ("/link_code", {}), ("/users", {"user_ids": user_id}),
                         ("/find_user", {"handle": "shir"}), ("/connect_ticket", {"user_id": user_id})):
        assert_conforms(path, "post", api.post(path, params, token=token), 503)


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
