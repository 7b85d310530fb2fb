"""The messaging rules as HTTP speaks them: only what the edge adds to the
use cases' rules, which tests/usecases/test_messaging_rules.py checks once
(blocking, groups, idempotent sends, notes to self). Here: each refusal's
status and error envelope, which parameter a 400 names, 201 for a new send
against 200 for a replay, and the Idempotency-Key header beside the
client_message_id parameter."""
from __future__ import annotations

from chalicelib import wiring
from tests.support.http import assert_bad_request


def texts(api, user) -> list:
    return [m["text"] for m in api.read_all(user)]


def _group_of(api, *users) -> str:
    group = api.create_group(users[0])
    for user in users:
        r = api.join(user, group)
        assert r.status == 200, r
    return group


def assert_refused(r, status: int, code: str) -> None:
    """The error envelope: exactly Code and a Message for people."""
    assert (r.status, r.code) == (status, code), r
    assert set(r.body) == {"Code", "Message"} and r.body["Message"], r


# --------------------------------------------------------------------------- refusals: status and envelope


def test_a_direct_message_to_a_user_who_blocks_the_sender_is_a_403_blocked(api):
    alice, bob = api.register("alice"), api.register("bob")
    assert api.block(bob, alice).status == 200
    assert_refused(api.send(alice, bob, "let me in"), 403, "Blocked")


def test_a_key_reused_for_another_text_recipient_or_kind_of_send_is_a_409_idempotency_conflict(api):
    alice, bob, carol = api.register("alice"), api.register("bob"), api.register("carol")
    group, other = _group_of(api, alice, bob), _group_of(api, alice, bob)
    assert api.send(alice, bob, "hi", client_message_id="k").status == 201
    assert_refused(api.send(alice, bob, "hi!", client_message_id="k"), 409, "IdempotencyConflict")
    assert_refused(api.send(alice, carol, "hi", client_message_id="k"), 409, "IdempotencyConflict")
    assert_refused(api.send_group(alice, group, "hi", client_message_id="k"), 409, "IdempotencyConflict")
    assert api.send_group(alice, group, "hi", client_message_id="g").status == 201
    assert_refused(api.send_group(alice, other, "hi", client_message_id="g"), 409, "IdempotencyConflict")


def test_a_group_send_by_a_non_member_is_a_403_not_a_member(api):
    alice, bob = api.register("alice"), api.register("bob")
    group = _group_of(api, alice)
    assert_refused(api.send_group(bob, group, "let me in"), 403, "NotAMember")


def test_joining_a_full_group_is_a_409_group_full(api, monkeypatch):
    monkeypatch.setenv("MAX_GROUP_MEMBERS", "2")
    wiring.reset()
    alice, bob, carol = api.register("alice"), api.register("bob"), api.register("carol")
    group = _group_of(api, alice, bob)
    assert_refused(api.join(carol, group), 409, "GroupFull")


def test_joining_or_leaving_a_group_as_another_user_is_a_403_forbidden(api):
    alice, bob = api.register("alice"), api.register("bob")
    group = _group_of(api, alice)
    for to_be_added in (1, 0):
        r = api.post("/update_group", {"user_id": bob.id, "group_id": group, "to_be_added": to_be_added},
                     token=alice.token)
        assert_refused(r, 403, "Forbidden")


def test_blocking_or_unblocking_yourself_is_a_400_naming_blocked_user_id(api):
    alice = api.register("alice")
    for to_block in (1, 0):
        assert_bad_request(api.block(alice, alice, to_block), "blocked_user_id")


# --------------------------------------------------------------------------- idempotent sends over HTTP


def test_a_new_send_answers_201_and_its_replay_200_with_the_original_body(api):
    alice, bob, carol = api.register("alice"), api.register("bob"), api.register("carol")
    first = api.send(alice, bob, "hi", client_message_id="msg-1")
    assert first.status == 201 and first.body["duplicate"] is False, first
    retry = api.send(alice, bob, "hi", client_message_id="msg-1")
    assert retry.status == 200, retry
    assert retry.body == {"message_id": first.body["message_id"], "sent_at": first.body["sent_at"],
                          "duplicate": True}
    group = _group_of(api, alice, bob, carol)
    first = api.send_group(alice, group, "hello", client_message_id="g-1")
    assert first.status == 201 and first.body["recipients"] == 2, first
    retry = api.send_group(alice, group, "hello", client_message_id="g-1")
    assert retry.status == 200, retry
    assert retry.body == {"message_id": first.body["message_id"], "sent_at": first.body["sent_at"],
                          "recipients": 2, "duplicate": True}


def test_the_idempotency_key_header_is_the_send_key(api):
    alice, bob = api.register("alice"), api.register("bob")
    headers = {"Idempotency-Key": "header-key-1"}
    params = {"sending_user_id": alice.id, "receiving_user_id": bob.id, "message_text": "hi"}
    first = api.post("/send", params, token=alice.token, headers=headers)
    assert first.status == 201 and first.body["duplicate"] is False, first
    retry = api.post("/send", params, token=alice.token, headers=headers)
    assert retry.status == 200, retry
    assert retry.body["message_id"] == first.body["message_id"]
    assert retry.body["duplicate"] is True


def test_the_idempotency_key_header_and_the_client_message_id_parameter_name_the_same_key(api):
    alice, bob = api.register("alice"), api.register("bob")
    params = {"sending_user_id": alice.id, "receiving_user_id": bob.id, "message_text": "hi"}
    first = api.post("/send", params, token=alice.token, headers={"Idempotency-Key": "shared"})
    assert first.status == 201, first
    retry = api.send(alice, bob, "hi", client_message_id="shared")
    assert retry.status == 200 and retry.body["duplicate"] is True, retry
    assert retry.body["message_id"] == first.body["message_id"]
    both = api.post("/send", {**params, "client_message_id": "shared"}, token=alice.token,
                    headers={"Idempotency-Key": "shared"})
    assert both.status == 200 and both.body["message_id"] == first.body["message_id"], both


def test_a_client_message_id_and_an_idempotency_key_header_with_different_values_is_a_400(api):
    alice, bob = api.register("alice"), api.register("bob")
    r = api.post("/send", {"sending_user_id": alice.id, "receiving_user_id": bob.id, "message_text": "hi",
                           "client_message_id": "one"}, token=alice.token, headers={"Idempotency-Key": "two"})
    assert r.status == 400 and r.code == "BadRequest", r
    assert "client_message_id" in r.body["Message"] or "Idempotency-Key" in r.body["Message"], r
    group = _group_of(api, alice, bob)
    r = api.post("/send_group", {"sending_user_id": alice.id, "group_id": group, "message_text": "hi",
                                 "client_message_id": "one"}, token=alice.token, headers={"Idempotency-Key": "two"})
    assert r.status == 400 and r.code == "BadRequest", r
    assert texts(api, bob) == []


def test_an_invalid_client_message_id_is_a_400_naming_it(api):
    alice, bob = api.register("alice"), api.register("bob")
    group = _group_of(api, alice, bob)
    for bad in ("with space", "k" * 65, "", "clé", "tab\there", "new\nline", "\u00a0nbsp"):
        assert_bad_request(api.send(alice, bob, "hi", client_message_id=bad), "client_message_id")
        assert_bad_request(api.send_group(alice, group, "hi", client_message_id=bad), "client_message_id")
    assert texts(api, bob) == []


def test_a_client_message_id_of_64_printable_ascii_characters_is_accepted(api):
    alice, bob = api.register("alice"), api.register("bob")
    key = ("!~0aZ" * 13)[:64]
    assert api.send(alice, bob, "hi", client_message_id=key).status == 201
    r = api.send(alice, bob, "hi", client_message_id=key)
    assert r.status == 200 and r.body["duplicate"] is True, r


def test_an_invalid_idempotency_key_header_is_a_400_naming_it(api):
    alice, bob = api.register("alice"), api.register("bob")
    params = {"sending_user_id": alice.id, "receiving_user_id": bob.id, "message_text": "hi"}
    for bad in ("with space", "k" * 65):
        r = api.post("/send", params, token=alice.token, headers={"Idempotency-Key": bad})
        assert_bad_request(r, "Idempotency-Key")
    assert texts(api, bob) == []
