"""The stream's endpoints over HTTP (docs/api.md, "The stream" and the
endpoint table), on SQLite and on MariaDB with Redis: what HTTP adds to the
rules tests/usecases/test_stream.py checks on the use cases. Each answer's
status and body, the `user_id` rule (the token's user; required with
AUTH_MODE=none), and bad input on every new parameter: a 4xx naming it,
never a 500, and nothing stored."""
from __future__ import annotations

from typing import Any, Dict, Iterator, List

import pytest

from chalicelib import wiring
from chalicelib.db import Database
from chalicelib.settings import Settings
from tests.conftest import Api
from tests.support.http import assert_bad_request

NOT_AN_ID = "not-a-uuid"
UNKNOWN = "00000000-0000-4000-8000-000000000000"
ISO = r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z"
ENDPOINTS = ("/sync", "/edit_message", "/delete_message", "/mark_read", "/conversations", "/history", "/group_info")


@pytest.fixture
def sapi(app_env, monkeypatch, request) -> Iterator[Api]:
    """The api helper on SQLite (no cache) and on MariaDB with Redis."""
    from chalice.test import Client

    from app import app

    if app_env["DATABASE_URL"].startswith("mysql"):
        monkeypatch.setenv("REDIS_URL", request.getfixturevalue("session_redis").url)
        monkeypatch.setenv("REDIS_TIMEOUT", "1")
        wiring.reset()
    with Client(app) as client:
        yield Api(client)


def sync(api, user, **params):
    return api.post("/sync", params, token=user.token)


def events(api, user) -> List[Dict[str, Any]]:
    out, after = [], 0
    while True:
        r = sync(api, user, after=after, limit=1000)
        assert r.status == 200, r
        out += r.body["events"]
        after = r.body["next_after"]
        if not r.body["has_more"]:
            return out


def edit(api, user, message_id, text, **extra):
    return api.post("/edit_message", {"message_id": message_id, "message_text": text, **extra}, token=user.token)


def delete(api, user, message_id, **extra):
    return api.post("/delete_message", {"message_id": message_id, **extra}, token=user.token)


def mark_read(api, user, message_id, **params):
    return api.post("/mark_read", {"message_id": message_id, **params}, token=user.token)


def sent_id(r) -> str:
    assert r.status == 201, r
    return r.body["message_id"]


def group_of(api, *users) -> str:
    group = api.create_group(users[0], "stream group")
    for u in users:
        assert api.join(u, group).status == 200
    return group


def stored(app_env, message_id: str):
    db = Database(Settings.from_env({"DATABASE_URL": app_env["DATABASE_URL"]}))
    try:
        return db.run(lambda tx: tx.one("SELECT body, edited_at IS NOT NULL, deleted_at IS NOT NULL FROM messages"
                                        " WHERE id = %s", (message_id,)), write=False)
    finally:
        db.close()


def run_sql(app_env, sql: str, params: tuple) -> None:
    db = Database(Settings.from_env({"DATABASE_URL": app_env["DATABASE_URL"]}))
    try:
        db.run(lambda tx: tx.execute(sql, params), write=True)
    finally:
        db.close()


def assert_refused(r, status: int, code: str) -> None:
    assert (r.status, r.code) == (status, code), r
    assert set(r.body) == {"Code", "Message"} and r.body["Message"], r


# --------------------------------------------------------------------------- answers


def test_each_stream_endpoint_answers_its_documented_status_and_body(sapi, app_env):
    import re

    alice, bob = sapi.register("alice"), sapi.register("bob")
    group = group_of(sapi, alice, bob)
    direct = sent_id(sapi.send(alice, bob, "hello"))
    grouped = sent_id(sapi.send_group(bob, group, "hi all"))

    r = sync(sapi, bob)
    assert r.status == 200 and set(r.body) == {"events", "next_after", "has_more"}, r
    assert [e["type"] for e in r.body["events"]] == ["member", "message", "message"]
    assert (r.body["next_after"], r.body["has_more"]) == (3, False)
    assert r.body["events"][1] == {
        "seq": 2, "type": "message", "message_id": direct, "kind": "direct", "sender_id": alice.id,
        "recipient_id": bob.id, "group_id": None, "text": "hello", "sent_at": r.body["events"][1]["sent_at"],
        "edited_at": None, "deleted": False, "attachments": []}

    r = edit(sapi, alice, direct, "hello, edited")
    assert r.status == 200 and set(r.body) == {"message_id", "edited_at"}, r
    assert r.body["message_id"] == direct and re.fullmatch(ISO, r.body["edited_at"])

    r = delete(sapi, bob, grouped)
    assert (r.status, r.body) == (200, {"message_id": grouped, "deleted": True})
    assert (delete(sapi, bob, grouped).status, stored(app_env, grouped)[0]) == (200, "")

    r = mark_read(sapi, bob, direct, with_user_id=alice.id)
    assert (r.status, r.body) == (200, {"message_id": direct})

    r = sapi.post("/conversations", {}, token=bob.token)
    assert r.status == 200 and set(r.body) == {"conversations", "next_before"}, r
    assert [c["id"] for c in r.body["conversations"]] == [group, alice.id]
    assert set(r.body["conversations"][0]) == {"kind", "id", "name", "last_message", "unread", "read_up_to",
                                               "read_up_to_seq"}

    r = sapi.post("/history", {"with_user_id": alice.id}, token=bob.token)
    assert r.status == 200 and set(r.body) == {"messages", "next_before_seq"}, r
    assert [(m["message_id"], m["text"]) for m in r.body["messages"]] == [(direct, "hello, edited")]

    r = sapi.post("/group_info", {"group_id": group}, token=alice.token)
    assert r.status == 200 and r.body == {
        "group_id": group, "group_name": "stream group", "member_count": 2,
        "members": sorted([{"user_id": u.id, "user_name": u.name, "handle": None} for u in (alice, bob)],
                          key=lambda m: m["user_id"]),
        "next_after_user_id": None}

    r = sapi.post("/account", {}, token=bob.token)
    assert r.status == 200 and r.body["read_receipts"] is True, r
    r = sapi.post("/update_account", {"read_receipts": 0}, token=bob.token)
    assert r.status == 200 and r.body["read_receipts"] is False, r
    assert sapi.post("/account", {}, token=bob.token).body["read_receipts"] is False


def test_sync_answers_say_which_path_served_them_in_x_cache(sapi, app_env):
    """docs/api.md: /sync's "Answers carry `X-Cache` too"."""
    alice, bob = sapi.register("alice"), sapi.register("bob")
    first = sync(sapi, bob)
    sapi.send(alice, bob, "cached")
    second = sync(sapi, bob)
    assert (first.status, second.status) == (200, 200)
    if app_env["DATABASE_URL"].startswith("mysql"):  # with Redis: a new user's first read misses, the next hits
        assert (first.headers.get("X-Cache"), second.headers.get("X-Cache")) == ("miss", "hit")
    else:
        assert (first.headers.get("X-Cache"), second.headers.get("X-Cache")) == ("off", "off")


def test_refusals_carry_their_status_and_code(sapi, app_env):
    alice, bob, carol = sapi.register("alice"), sapi.register("bob"), sapi.register("carol")
    group = group_of(sapi, alice, bob)
    direct = sent_id(sapi.send(alice, bob, "mine"))
    assert_refused(edit(sapi, bob, direct, "bob's"), 403, "Forbidden")
    assert_refused(delete(sapi, bob, direct), 403, "Forbidden")
    for r in (edit(sapi, carol, direct, "x"), delete(sapi, carol, direct), edit(sapi, alice, UNKNOWN, "x"),
              delete(sapi, alice, UNKNOWN), mark_read(sapi, bob, direct, with_user_id=carol.id),
              mark_read(sapi, bob, direct, group_id=group), mark_read(sapi, carol, direct, with_user_id=alice.id)):
        assert_refused(r, 404, "MessageNotFound")
    assert_refused(sapi.post("/group_info", {"group_id": group}, token=carol.token), 403, "NotAMember")
    assert_refused(sapi.post("/group_info", {"group_id": UNKNOWN}, token=carol.token), 404, "GroupNotFound")
    r = sync(sapi, bob, after=5)
    assert (r.status, r.code, r.body.get("newest_seq")) == (409, "CursorAhead", 2), r
    old = sent_id(sapi.send(alice, bob, "sent two days ago"))
    run_sql(app_env, "UPDATE messages SET sent_at = %s WHERE id = %s", ("2020-01-01 00:00:00.000000", old))
    assert_refused(edit(sapi, alice, old, "too late"), 409, "EditWindowClosed")
    assert delete(sapi, alice, old).status == 200  # at any age
    assert_refused(edit(sapi, alice, old, "back"), 409, "MessageDeleted")
    assert stored(app_env, direct)[:2] == ("mine", 0)


# --------------------------------------------------------------------------- user_id


def test_the_stream_endpoints_act_as_the_tokens_user_and_another_user_id_is_forbidden(sapi):
    alice, bob = sapi.register("alice"), sapi.register("bob")
    group = group_of(sapi, alice, bob)
    message = sent_id(sapi.send(alice, bob, "x"))
    calls = {
        "/sync": {}, "/edit_message": {"message_id": message, "message_text": "y"},
        "/delete_message": {"message_id": message}, "/mark_read": {"message_id": message, "with_user_id": bob.id},
        "/conversations": {}, "/history": {"with_user_id": bob.id}, "/group_info": {"group_id": group},
    }
    before = events(sapi, alice), events(sapi, bob)
    for path, params in calls.items():
        assert_refused(sapi.post(path, {**params, "user_id": bob.id}, token=alice.token), 403, "Forbidden")
    assert (events(sapi, alice), events(sapi, bob)) == before
    for path in ("/sync", "/conversations", "/history", "/group_info", "/mark_read", "/edit_message",
                 "/delete_message"):
        r = sapi.post(path, {**calls[path], "user_id": alice.id.upper()}, token=alice.token)
        assert r.status == 200, (path, r)
    assert sapi.post("/sync", {}).status == 401


def test_without_tokens_user_id_is_required_and_names_the_acting_user(sapi, monkeypatch):
    monkeypatch.setenv("AUTH_MODE", "none")
    wiring.reset()
    alice, bob = sapi.register("alice"), sapi.register("bob")
    message = sent_id(sapi.post("/send", {"sending_user_id": alice.id, "receiving_user_id": bob.id,
                                          "message_text": "no tokens"}))
    group = sapi.create_group(alice)
    assert sapi.post("/update_group", {"user_id": alice.id, "group_id": group, "to_be_added": 1}).status == 200
    calls = {
        "/sync": {}, "/edit_message": {"message_id": message, "message_text": "y"},
        "/delete_message": {"message_id": message}, "/mark_read": {"message_id": message, "with_user_id": alice.id},
        "/conversations": {}, "/history": {"with_user_id": alice.id}, "/group_info": {"group_id": group},
    }
    for path, params in calls.items():
        assert_bad_request(sapi.post(path, params), "user_id")
    r = sapi.post("/sync", {"user_id": bob.id})
    assert r.status == 200 and [e["type"] for e in r.body["events"]] == ["message"], r
    assert sapi.post("/mark_read", {"user_id": bob.id, "message_id": message, "with_user_id": alice.id}).status == 200
    assert sapi.post("/edit_message", {"user_id": alice.id, "message_id": message,
                                       "message_text": "edited"}).status == 200
    r = sapi.post("/history", {"user_id": bob.id, "with_user_id": alice.id})
    assert [m["text"] for m in r.body["messages"]] == ["edited"], r
    assert sapi.post("/group_info", {"user_id": alice.id, "group_id": group}).body["member_count"] == 1
    assert_refused(sapi.post("/edit_message", {"user_id": bob.id, "message_id": message, "message_text": "z"}),
                   403, "Forbidden")
    assert sapi.post("/delete_message", {"user_id": alice.id, "message_id": message}).status == 200
    assert [e["type"] for e in sapi.post("/sync", {"user_id": bob.id}).body["events"]] == [
        "message", "read", "edit", "delete"]


# --------------------------------------------------------------------------- bad input


def test_bad_input_on_every_new_parameter_is_a_400_naming_it_and_stores_nothing(sapi, app_env):
    alice, bob = sapi.register("alice"), sapi.register("bob")
    group = group_of(sapi, alice, bob)
    message = sent_id(sapi.send(alice, bob, "untouched"))
    too_big = str(2**63)
    cases = [
        ("/sync", {"after": "-1"}, "after"), ("/sync", {"after": "x"}, "after"), ("/sync", {"after": too_big}, "after"),
        ("/sync", {"after": "1.5"}, "after"),
        ("/sync", {"limit": "0"}, "limit"), ("/sync", {"limit": "1001"}, "limit"), ("/sync", {"limit": ""}, "limit"),
        ("/sync", {"wait": "-1"}, "wait"), ("/sync", {"wait": "21"}, "wait"), ("/sync", {"wait": "soon"}, "wait"),
        ("/sync", {"user_id": NOT_AN_ID}, "user_id"),
        ("/edit_message", {"message_text": "x"}, "message_id"),
        ("/edit_message", {"message_id": NOT_AN_ID, "message_text": "x"}, "message_id"),
        ("/edit_message", {"message_id": message}, "message_text"),
        ("/edit_message", {"message_id": message, "message_text": ""}, "message_text"),
        ("/edit_message", {"message_id": message, "message_text": "y" * 4097}, "message_text"),
        ("/edit_message", {"message_id": message, "message_text": "bell\x07"}, "message_text"),
        ("/edit_message", {"message_id": message, "message_text": "x", "user_id": NOT_AN_ID}, "user_id"),
        ("/delete_message", {}, "message_id"), ("/delete_message", {"message_id": NOT_AN_ID}, "message_id"),
        ("/delete_message", {"message_id": message + "0"}, "message_id"),
        ("/mark_read", {"with_user_id": alice.id}, "message_id"),
        ("/mark_read", {"message_id": NOT_AN_ID, "with_user_id": alice.id}, "message_id"),
        ("/mark_read", {"message_id": message, "with_user_id": NOT_AN_ID}, "with_user_id"),
        ("/mark_read", {"message_id": message, "group_id": NOT_AN_ID}, "group_id"),
        ("/mark_read", {"message_id": message}, "with_user_id"),
        ("/mark_read", {"message_id": message, "with_user_id": alice.id, "group_id": group}, "with_user_id"),
        ("/conversations", {"limit": "0"}, "limit"), ("/conversations", {"limit": "101"}, "limit"),
        ("/conversations", {"before": "0"}, "before"), ("/conversations", {"before": "-3"}, "before"),
        ("/conversations", {"before": too_big}, "before"), ("/conversations", {"before": "z"}, "before"),
        ("/history", {}, "with_user_id"),
        ("/history", {"with_user_id": alice.id, "group_id": group}, "with_user_id"),
        ("/history", {"with_user_id": NOT_AN_ID}, "with_user_id"), ("/history", {"group_id": NOT_AN_ID}, "group_id"),
        ("/history", {"with_user_id": alice.id, "before_seq": "0"}, "before_seq"),
        ("/history", {"with_user_id": alice.id, "before_seq": too_big}, "before_seq"),
        ("/history", {"with_user_id": alice.id, "limit": "0"}, "limit"),
        ("/history", {"with_user_id": alice.id, "limit": "201"}, "limit"),
        ("/group_info", {}, "group_id"), ("/group_info", {"group_id": NOT_AN_ID}, "group_id"),
        ("/group_info", {"group_id": group, "after_user_id": NOT_AN_ID}, "after_user_id"),
        ("/group_info", {"group_id": group, "limit": "0"}, "limit"),
        ("/group_info", {"group_id": group, "limit": "501"}, "limit"),
    ]
    before = events(sapi, alice), events(sapi, bob)
    for path, params, parameter in cases:
        for r in (sapi.post(path, params, token=bob.token if path == "/mark_read" else alice.token),
                  sapi.post(path, json_body=params, token=bob.token if path == "/mark_read" else alice.token)):
            assert_bad_request(r, parameter)
    # JSON values of the wrong type
    for path, params, parameter in [("/sync", {"after": 1.5}, "after"), ("/sync", {"wait": True}, "wait"),
                                    ("/sync", {"limit": [5]}, "limit"), ("/edit_message", {
                                        "message_id": message, "message_text": 7}, "message_text"),
                                    ("/delete_message", {"message_id": 12}, "message_id"),
                                    ("/conversations", {"before": "5", "limit": {}}, "limit")]:
        assert_bad_request(sapi.post(path, json_body=params, token=alice.token), parameter)
    # given twice with different values
    assert_bad_request(sapi.post("/sync", {"after": 0}, json_body={"after": 1}, token=alice.token), "after")
    assert (events(sapi, alice), events(sapi, bob)) == before
    assert stored(app_env, message)[:3] == ("untouched", 0, 0)


def test_unknown_parameters_are_ignored_as_elsewhere(sapi, app_env):
    alice, bob = sapi.register("alice"), sapi.register("bob")
    group = group_of(sapi, alice, bob)
    message = sent_id(sapi.send(alice, bob, "hi"))
    extra = {"colour": "blue", "min_timestamp": "garbage", "receiving_user_id": NOT_AN_ID}
    assert sapi.post("/sync", extra, token=bob.token).status == 200
    assert sapi.post("/conversations", extra, token=bob.token).status == 200
    assert sapi.post("/history", {"with_user_id": alice.id, **extra}, token=bob.token).status == 200
    assert sapi.post("/group_info", {"group_id": group, **extra}, token=bob.token).status == 200
    assert mark_read(sapi, bob, message, with_user_id=alice.id, **extra).status == 200
    assert edit(sapi, alice, message, "hi!", **extra).status == 200
    assert delete(sapi, alice, message, **extra).status == 200
    assert stored(app_env, message)[0] == ""


def test_the_largest_and_smallest_values_in_range_are_accepted(sapi):
    alice, bob = sapi.register("alice"), sapi.register("bob")
    group = group_of(sapi, alice, bob)
    message = sent_id(sapi.send(alice, bob, "x"))
    assert edit(sapi, alice, message, "😀" * 4096).status == 200
    assert [e["text"] for e in events(sapi, bob) if e["type"] == "edit"] == ["😀" * 4096]
    for path, params in [("/sync", {"after": 0, "limit": 1, "wait": 0}), ("/sync", {"limit": 1000, "wait": 0}),
                         ("/conversations", {"limit": 1, "before": str(2**63 - 1)}),
                         ("/conversations", {"limit": 100, "before": 1}),
                         ("/history", {"with_user_id": alice.id, "limit": 200, "before_seq": str(2**63 - 1)}),
                         ("/history", {"group_id": group, "limit": 1, "before_seq": 1}),
                         ("/group_info", {"group_id": group, "limit": 500, "after_user_id": UNKNOWN}),
                         ("/group_info", {"group_id": group, "limit": 1})]:
        r = sapi.post(path, params, token=bob.token)
        assert r.status == 200, (path, params, r)
