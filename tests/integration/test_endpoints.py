"""Each endpoint's success answer as docs/api.md lists it, the three
ways of passing parameters, repeated parameters, the original specification's
example calls, and unknown or malformed ids."""
from __future__ import annotations

import json
import re
import os
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any, Dict, Optional

import pytest

from chalicelib import wiring
from chalicelib.auth import TokenSigner
from tests.support.http import assert_bad_request, raw_post

SENT_AT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z")
MESSAGE_KEYS = {"seq", "message_id", "kind", "sender_id", "group_id", "text", "sent_at", "attachments"}


def assert_uuid(value: Any) -> None:
    assert isinstance(value, str), value
    assert str(uuid.UUID(value)) == value.lower(), value


def assert_recent_sent_at(value: Any) -> None:
    assert isinstance(value, str) and SENT_AT.fullmatch(value), value
    moment = datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
    assert abs(datetime.now(timezone.utc) - moment) < timedelta(minutes=5), value


def call(api, transport: str, path: str, params: Dict[str, Any], token: Optional[str] = None):
    if transport == "query":
        return api.post(path, params, token=token)
    if transport == "json":
        return api.post(path, token=token, json_body=params)
    return api.post(path, token=token, form=params)


TRANSPORTS = ["query", "json", "form"]


# --------------------------------------------------------------------------- success bodies


def test_register_answers_201_with_exactly_the_user_id_the_name_the_handle_a_token_and_its_session(api):
    r = api.post("/register", {"user_name": "shir"})
    assert r.status == 201, r
    assert set(r.body) == {"user_id", "user_name", "handle", "token", "session_id"}
    assert_uuid(r.body["user_id"])
    assert_uuid(r.body["session_id"])
    assert r.body["user_name"] == "shir" and r.body["handle"] is None
    assert isinstance(r.body["token"], str) and r.body["token"]


def test_every_registration_gets_a_new_user_id_even_for_the_same_name(api):
    first, second = api.register("same"), api.register("same")
    assert first.id != second.id
    assert first.token != second.token


def test_block_answers_200_with_the_two_users_and_blocked_true_and_unblock_with_blocked_false(api):
    alice, bob = api.register("alice"), api.register("bob")
    r = api.block(alice, bob, 1)
    assert r.status == 200, r
    assert r.body == {"blocking_user_id": alice.id, "blocked_user_id": bob.id, "blocked": True}
    r = api.block(alice, bob, 0)
    assert r.status == 200, r
    assert r.body == {"blocking_user_id": alice.id, "blocked_user_id": bob.id, "blocked": False}


def test_send_answers_201_with_a_message_id_an_iso_utc_microsecond_sent_at_and_duplicate_false(api):
    alice, bob = api.register("alice"), api.register("bob")
    r = api.send(alice, bob, "hi")
    assert r.status == 201, r
    assert set(r.body) == {"message_id", "sent_at", "duplicate"}
    assert_uuid(r.body["message_id"])
    assert_recent_sent_at(r.body["sent_at"])
    assert r.body["duplicate"] is False


def test_create_group_answers_201_with_the_group_id_and_name(api):
    alice = api.register("alice")
    r = api.post("/create_group", {"group_name": "bambis"}, token=alice.token)
    assert r.status == 201, r
    assert set(r.body) == {"group_id", "group_name"}
    assert_uuid(r.body["group_id"])
    assert r.body["group_name"] == "bambis"


def test_update_group_answers_200_with_member_true_on_join_and_member_false_on_leave(api):
    alice = api.register("alice")
    group = api.create_group(alice)
    r = api.join(alice, group, 1)
    assert r.status == 200, r
    assert r.body == {"group_id": group, "user_id": alice.id, "member": True}
    r = api.join(alice, group, 0)
    assert r.status == 200, r
    assert r.body == {"group_id": group, "user_id": alice.id, "member": False}


def test_send_group_answers_201_with_message_id_sent_at_recipients_and_duplicate_false(api):
    alice, bob, carol = api.register("alice"), api.register("bob"), api.register("carol")
    group = api.create_group(alice)
    for user in (alice, bob, carol):
        assert api.join(user, group).status == 200
    r = api.send_group(alice, group, "hello_group")
    assert r.status == 201, r
    assert set(r.body) == {"message_id", "sent_at", "recipients", "duplicate"}
    assert_uuid(r.body["message_id"])
    assert_recent_sent_at(r.body["sent_at"])
    assert r.body["recipients"] == 2
    assert r.body["duplicate"] is False


def test_read_messages_answers_200_with_messages_next_after_and_has_more(api):
    alice, bob = api.register("alice"), api.register("bob")
    api.send(alice, bob, "one")
    r = api.read(bob, after=0)
    assert r.status == 200, r
    assert set(r.body) == {"messages", "next_after", "has_more"}
    assert r.body["next_after"] == 1
    assert r.body["has_more"] is False


def test_a_direct_message_reads_back_with_exactly_the_documented_keys_and_values(api):
    alice, bob = api.register("alice"), api.register("bob")
    sent = api.send(alice, bob, "hi bob")
    assert sent.status == 201, sent
    [item] = api.read(bob).body["messages"]
    assert set(item) == MESSAGE_KEYS
    assert item == {
        "seq": 1,
        "message_id": sent.body["message_id"],
        "kind": "direct",
        "sender_id": alice.id,
        "group_id": None,
        "text": "hi bob",
        "sent_at": sent.body["sent_at"],
        "attachments": [],
    }


def test_a_group_message_reads_back_with_kind_group_and_its_group_id(api):
    alice, bob = api.register("alice"), api.register("bob")
    group = api.create_group(alice)
    api.join(alice, group)
    api.join(bob, group)
    sent = api.send_group(alice, group, "hello_group")
    assert sent.status == 201, sent
    [item] = api.read(bob).body["messages"]
    assert set(item) == MESSAGE_KEYS
    assert item == {
        "seq": 2,  # bob's join is his seq 1
        "message_id": sent.body["message_id"],
        "kind": "group",
        "sender_id": alice.id,
        "group_id": group,
        "text": "hello_group",
        "sent_at": sent.body["sent_at"],
        "attachments": [],
    }


def test_health_answers_200_with_the_database_ok_and_no_secret(api, app_env):
    r = api.get("/health")
    assert r.status == 200, r
    assert r.body["database"] == "ok"
    assert "cache" in r.body
    text = json.dumps(r.body)
    assert app_env["AUTH_SECRET"] not in text
    assert app_env["DATABASE_URL"] not in text


# --------------------------------------------------------------------------- transports


def _valid_calls(api):
    """A ready-made valid call of every endpoint, acting as alice."""
    alice, bob = api.register("alice"), api.register("bob")
    group = api.create_group(alice)
    assert api.join(alice, group).status == 200
    assert api.join(bob, group).status == 200
    calls = {
        "/block": ({"blocking_user_id": alice.id, "blocked_user_id": bob.id, "to_block": "1"}, 200),
        "/send": ({"sending_user_id": alice.id, "receiving_user_id": bob.id, "message_text": "via"}, 201),
        "/create_group": ({"group_name": "via"}, 201),
        "/update_group": ({"user_id": alice.id, "group_id": group, "to_be_added": "0"}, 200),
        "/send_group": ({"sending_user_id": alice.id, "group_id": group, "message_text": "via"}, 201),
        "/read_messages": ({"user_id": alice.id, "after": "0", "limit": "10"}, 200),
    }
    return alice, bob, group, calls


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_register_takes_its_parameter_from_the_query_a_json_body_or_a_form_body(api, transport):
    r = call(api, transport, "/register", {"user_name": f"by {transport}"})
    assert r.status == 201, r
    assert r.body["user_name"] == f"by {transport}"


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("path", ["/block", "/send", "/create_group", "/update_group", "/send_group", "/read_messages"])
def test_every_endpoint_takes_its_parameters_from_the_query_a_json_body_or_a_form_body(api, path, transport):
    alice, bob, group, calls = _valid_calls(api)
    params, status = calls[path]
    r = call(api, transport, path, params, token=alice.token)
    assert r.status == status, r
    if path in ("/send", "/send_group"):
        [item] = api.read(bob).body["messages"]
        assert item["message_id"] == r.body["message_id"]
        assert item["text"] == "via"
    if path == "/block":
        assert r.body["blocked"] is True
        assert api.send(bob, alice, "blocked?").code == "Blocked"
    if path == "/update_group":
        assert r.body["member"] is False
        assert api.send_group(alice, group).code == "NotAMember"


def test_a_json_body_may_carry_numbers_for_flags_cursors_and_limits(api):
    alice, bob = api.register("alice"), api.register("bob")
    group = api.create_group(alice)
    r = api.post("/block", token=alice.token,
                 json_body={"blocking_user_id": alice.id, "blocked_user_id": bob.id, "to_block": 1})
    assert r.status == 200 and r.body["blocked"] is True, r
    r = api.post("/update_group", token=alice.token,
                 json_body={"user_id": alice.id, "group_id": group, "to_be_added": 1})
    assert r.status == 200 and r.body["member"] is True, r
    api.send(alice, alice, "note")
    r = api.post("/read_messages", token=alice.token, json_body={"user_id": alice.id, "after": 0, "limit": 5})
    assert r.status == 200, r
    assert [m["text"] for m in r.body["messages"]] == ["note"]


def test_a_json_body_with_a_charset_parameter_in_its_content_type_is_accepted(api):
    r = api.post("/register", json_body={"user_name": "charset"},
                 headers={"Content-Type": "application/json; charset=utf-8"})
    assert r.status == 201, r
    assert r.body["user_name"] == "charset"


def test_a_json_body_that_is_not_an_object_is_a_400(api):
    r = api.post("/register", raw_body=b'["user_name", "x"]', headers={"Content-Type": "application/json"})
    assert r.status == 400 and r.code == "BadRequest", r


def test_a_json_string_where_a_text_is_expected_must_be_a_string(api):
    alice, bob = api.register("alice"), api.register("bob")
    r = api.post("/send", token=alice.token,
                 json_body={"sending_user_id": alice.id, "receiving_user_id": bob.id, "message_text": 5})
    assert_bad_request(r, "message_text")


# --------------------------------------------------------------------------- repeated parameters


def test_a_parameter_repeated_in_the_query_with_different_values_is_a_400_naming_it(api):
    r = api.post("/register", {"user_name": ["shir", "dana"]})
    assert_bad_request(r, "user_name")


def test_a_parameter_repeated_in_the_query_with_different_values_is_a_400_on_send(api):
    alice, bob = api.register("alice"), api.register("bob")
    r = api.send(alice, bob, ["one", "two"])
    assert_bad_request(r, "message_text")
    assert api.read(bob).body["messages"] == []


def test_a_cursor_repeated_in_the_query_with_different_values_is_a_400_naming_after(api):
    alice = api.register("alice")
    r = api.read(alice, after=["0", "1"])
    assert_bad_request(r, "after")


def test_a_parameter_given_in_the_query_and_in_a_json_body_with_different_values_is_a_400_naming_it(api):
    alice, bob = api.register("alice"), api.register("bob")
    r = api.post("/send", {"message_text": "query"}, token=alice.token,
                 json_body={"sending_user_id": alice.id, "receiving_user_id": bob.id, "message_text": "body"})
    assert_bad_request(r, "message_text")
    assert api.read(bob).body["messages"] == []


def test_a_parameter_given_in_the_query_and_in_a_form_body_with_different_values_is_a_400_naming_it(api):
    alice, bob = api.register("alice"), api.register("bob")
    r = api.post("/block", {"blocked_user_id": bob.id}, token=alice.token,
                 form={"blocking_user_id": alice.id, "blocked_user_id": alice.id, "to_block": "1"})
    assert_bad_request(r, "blocked_user_id")


def test_a_parameter_repeated_with_the_same_value_is_accepted_and_used_once(api):
    alice, bob = api.register("alice"), api.register("bob")
    r = api.send(alice, bob, ["same", "same"])
    assert r.status == 201, r
    r = api.post("/send", {"message_text": "again", "receiving_user_id": bob.id}, token=alice.token,
                 json_body={"sending_user_id": alice.id, "receiving_user_id": bob.id, "message_text": "again"})
    assert r.status == 201, r
    assert [m["text"] for m in api.read(bob).body["messages"]] == ["same", "again"]


def test_a_name_repeated_with_the_same_value_in_query_and_form_is_accepted(api):
    r = api.post("/register", {"user_name": "twice"}, form={"user_name": "twice"})
    assert r.status == 201, r
    assert r.body["user_name"] == "twice"


# --------------------------------------------------------------------------- the original examples


def test_the_original_specification_example_calls_work_unchanged_with_real_ids(api):
    registered = [raw_post(api, f"/register?user_name={name}") for name in ("shir", "noa", "dan")]
    for r in registered:
        assert r.status == 201, r
    (u1, t1), (u2, t2), (u3, t3) = [(r.body["user_id"], r.body["token"]) for r in registered]
    assert registered[0].body["user_name"] == "shir"

    r = raw_post(api, f"/send?sending_user_id={u1}&receiving_user_id={u3}&message_text=hi", t1)
    assert r.status == 201, r
    dm_id = r.body["message_id"]

    r = raw_post(api, f"/block?blocking_user_id={u3}&blocked_user_id={u1}&to_block=1", t3)
    assert r.status == 200 and r.body["blocked"] is True, r

    r = raw_post(api, "/create_group?group_name=bambis", t1)
    assert r.status == 201 and r.body["group_name"] == "bambis", r
    group = r.body["group_id"]

    for user, token in ((u1, t1), (u2, t2)):
        r = raw_post(api, f"/update_group?user_id={user}&group_id={group}&to_be_added=1", token)
        assert r.status == 200 and r.body["member"] is True, r

    r = raw_post(api, f"/send_group?sending_user_id={u1}&group_id={group}&message_text=hello_group", t1)
    assert r.status == 201, r
    assert r.body["recipients"] == 1
    group_message_id = r.body["message_id"]

    r = raw_post(api, f"/read_messages?user_id={u2}&min_timestamp=2024-07-01 09:10:00.0", t2)
    assert r.status == 200, r
    assert [(m["message_id"], m["text"], m["group_id"]) for m in r.body["messages"]] == [
        (group_message_id, "hello_group", group)
    ]
    r = raw_post(api, f"/read_messages?user_id={u3}&min_timestamp=2024-07-01 09:10:00.0", t3)
    assert r.status == 200, r
    assert [(m["message_id"], m["text"], m["sender_id"]) for m in r.body["messages"]] == [(dm_id, "hi", u1)]


# --------------------------------------------------------------------------- unknown ids


def _token_for_unknown_user(app_env) -> tuple:
    """An unknown acting user: only possible with auth off (with it on, no
    session of such a user exists, so its token is a 401: see below)."""
    ghost = str(uuid.uuid4())
    os.environ["AUTH_MODE"] = "none"  # app_env's monkeypatch puts it back
    wiring.reset()
    return ghost, None


def test_a_correctly_signed_token_of_a_session_that_does_not_exist_is_a_401(api, app_env):
    ghost = str(uuid.uuid4())
    token = TokenSigner([app_env["AUTH_SECRET"]]).issue(ghost, str(uuid.uuid4()))
    r = api.post("/read_messages", {"user_id": ghost, "after": 0}, token=token)
    assert r.status == 401 and r.code == "Unauthorized", r


def test_a_direct_message_to_an_unknown_user_is_a_404_user_not_found(api):
    alice = api.register("alice")
    r = api.post("/send", {"sending_user_id": alice.id, "receiving_user_id": str(uuid.uuid4()),
                           "message_text": "anyone?"}, token=alice.token)
    assert r.status == 404 and r.code == "UserNotFound", r


def test_a_direct_message_from_an_unknown_user_is_a_404_user_not_found(api, app_env):
    bob = api.register("bob")
    ghost, token = _token_for_unknown_user(app_env)
    r = api.post("/send", {"sending_user_id": ghost, "receiving_user_id": bob.id, "message_text": "boo"},
                 token=token)
    assert r.status == 404 and r.code == "UserNotFound", r
    assert api.read(bob).body["messages"] == []


@pytest.mark.parametrize("to_block", [1, 0])
def test_blocking_or_unblocking_an_unknown_user_is_a_404_user_not_found(api, to_block):
    alice = api.register("alice")
    r = api.post("/block", {"blocking_user_id": alice.id, "blocked_user_id": str(uuid.uuid4()),
                            "to_block": to_block}, token=alice.token)
    assert r.status == 404 and r.code == "UserNotFound", r


@pytest.mark.parametrize("to_be_added", [1, 0])
def test_joining_or_leaving_an_unknown_group_is_a_404_group_not_found(api, to_be_added):
    alice = api.register("alice")
    r = api.join(alice, str(uuid.uuid4()), to_be_added)
    assert r.status == 404 and r.code == "GroupNotFound", r


def test_an_unknown_user_joining_a_group_is_a_404_user_not_found(api, app_env):
    alice = api.register("alice")
    group = api.create_group(alice)
    ghost, token = _token_for_unknown_user(app_env)
    r = api.post("/update_group", {"user_id": ghost, "group_id": group, "to_be_added": 1}, token=token)
    assert r.status == 404 and r.code == "UserNotFound", r


def test_sending_to_an_unknown_group_is_a_404_group_not_found(api):
    alice = api.register("alice")
    r = api.send_group(alice, str(uuid.uuid4()))
    assert r.status == 404 and r.code == "GroupNotFound", r


@pytest.mark.parametrize("cursor", [{"after": 0}, {"min_timestamp": "2024-07-01 09:10:00.0"}])
def test_reading_the_inbox_of_an_unknown_user_is_a_404_user_not_found(api, app_env, cursor):
    ghost, token = _token_for_unknown_user(app_env)
    r = api.post("/read_messages", {"user_id": ghost, **cursor}, token=token)
    assert r.status == 404 and r.code == "UserNotFound", r


# --------------------------------------------------------------------------- malformed ids and flags


ID_PARAMETERS = [
    ("/block", "blocking_user_id"),
    ("/block", "blocked_user_id"),
    ("/send", "sending_user_id"),
    ("/send", "receiving_user_id"),
    ("/update_group", "user_id"),
    ("/update_group", "group_id"),
    ("/send_group", "sending_user_id"),
    ("/send_group", "group_id"),
    ("/read_messages", "user_id"),
]


@pytest.mark.parametrize("path,parameter", ID_PARAMETERS)
def test_a_malformed_id_is_a_400_naming_the_parameter(api, path, parameter):
    alice, _, _, calls = _valid_calls(api)
    params, _ = calls[path]
    for bad in ("1", "abc", "", "2e86f3d2-9705-4acb-b1c7-980e5bb05ad", "2e86f3d2-9705-4acb-b1c7-980e5bb05ada-0"):
        r = api.post(path, {**params, parameter: bad}, token=alice.token)
        assert_bad_request(r, parameter)


@pytest.mark.parametrize("path,parameter", ID_PARAMETERS + [
    ("/register", "user_name"), ("/create_group", "group_name"), ("/send", "message_text"),
    ("/send_group", "message_text"), ("/block", "to_block"), ("/update_group", "to_be_added"),
])
def test_a_missing_required_parameter_is_a_400_naming_it(api, path, parameter):
    alice, _, _, calls = _valid_calls(api)
    params = dict(calls.get(path, ({"user_name": "x"}, 201))[0])
    params.pop(parameter)
    r = api.post(path, params, token=alice.token)
    assert_bad_request(r, parameter)


@pytest.mark.parametrize("path,parameter", [("/block", "to_block"), ("/update_group", "to_be_added")])
def test_a_flag_other_than_1_or_0_is_a_400_naming_it(api, path, parameter):
    alice, _, _, calls = _valid_calls(api)
    params, _ = calls[path]
    for bad in ("2", "yes", ""):
        r = api.post(path, {**params, parameter: bad}, token=alice.token)
        assert_bad_request(r, parameter)
