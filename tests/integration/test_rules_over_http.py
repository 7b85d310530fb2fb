"""The messaging rules of docs/api.md: idempotent sends, blocking, groups and
notes to self."""
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


# --------------------------------------------------------------------------- idempotency


def test_a_retried_send_with_the_same_client_message_id_returns_the_original_and_delivers_once(api):
    alice, bob = api.register("alice"), api.register("bob")
    first = api.send(alice, bob, "hi", client_message_id="msg-1")
    assert first.status == 201 and first.body["duplicate"] is False, first
    retry = api.send(alice, bob, "hi", client_message_id="msg-1")
    assert retry.status == 200, retry
    assert retry.body == {"message_id": first.body["message_id"], "sent_at": first.body["sent_at"],
                          "duplicate": True}
    messages = api.read_all(bob)
    assert [(m["message_id"], m["text"]) for m in messages] == [(first.body["message_id"], "hi")]


def test_a_retried_send_with_the_same_idempotency_key_header_returns_the_original_and_delivers_once(api):
    alice, bob = api.register("alice"), api.register("bob")
    headers = {"Idempotency-Key": "header-key-1"}
    params = {"sending_user_id": alice.id, "receiving_user_id": bob.id, "message_text": "hi"}
    first = api.post("/send", params, token=alice.token, headers=headers)
    assert first.status == 201 and first.body["duplicate"] is False, first
    retry = api.post("/send", params, token=alice.token, headers=headers)
    assert retry.status == 200, retry
    assert retry.body["message_id"] == first.body["message_id"]
    assert retry.body["duplicate"] is True
    assert len(api.read_all(bob)) == 1


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
    assert len(api.read_all(bob)) == 1


def test_a_retried_group_send_returns_the_original_with_the_same_recipients_and_delivers_once(api):
    alice, bob, carol = api.register("alice"), api.register("bob"), api.register("carol")
    group = _group_of(api, alice, bob, carol)
    first = api.send_group(alice, group, "hello", client_message_id="g-1")
    assert first.status == 201 and first.body["recipients"] == 2, first
    retry = api.send_group(alice, group, "hello", client_message_id="g-1")
    assert retry.status == 200, retry
    assert retry.body == {"message_id": first.body["message_id"], "sent_at": first.body["sent_at"],
                          "recipients": 2, "duplicate": True}
    assert texts(api, bob) == ["hello"]
    assert texts(api, carol) == ["hello"]


def test_the_same_key_with_a_different_text_is_a_409_idempotency_conflict_and_delivers_nothing(api):
    alice, bob = api.register("alice"), api.register("bob")
    assert api.send(alice, bob, "hi", client_message_id="k").status == 201
    r = api.send(alice, bob, "hi!", client_message_id="k")
    assert r.status == 409 and r.code == "IdempotencyConflict", r
    assert texts(api, bob) == ["hi"]


def test_the_same_key_with_a_different_recipient_is_a_409_idempotency_conflict_and_delivers_nothing(api):
    alice, bob, carol = api.register("alice"), api.register("bob"), api.register("carol")
    assert api.send(alice, bob, "hi", client_message_id="k").status == 201
    r = api.send(alice, carol, "hi", client_message_id="k")
    assert r.status == 409 and r.code == "IdempotencyConflict", r
    assert texts(api, carol) == []


def test_the_same_key_for_a_group_after_a_direct_message_is_a_409_idempotency_conflict(api):
    alice, bob = api.register("alice"), api.register("bob")
    group = _group_of(api, alice, bob)
    other = _group_of(api, alice, bob)
    assert api.send(alice, bob, "hi", client_message_id="k").status == 201
    r = api.send_group(alice, group, "hi", client_message_id="k")
    assert r.status == 409 and r.code == "IdempotencyConflict", r
    assert api.send_group(alice, group, "hi", client_message_id="g").status == 201
    r = api.send_group(alice, other, "hi", client_message_id="g")
    assert r.status == 409 and r.code == "IdempotencyConflict", r
    assert texts(api, bob) == ["hi", "hi"]


def test_the_same_key_used_by_a_different_sender_is_an_independent_message(api):
    alice, bob, carol = api.register("alice"), api.register("bob"), api.register("carol")
    a = api.send(alice, carol, "from alice", client_message_id="k")
    b = api.send(bob, carol, "from bob", client_message_id="k")
    assert a.status == 201 and b.status == 201, (a, b)
    assert a.body["message_id"] != b.body["message_id"]
    assert b.body["duplicate"] is False
    assert texts(api, carol) == ["from alice", "from bob"]


def test_keys_that_differ_only_in_letter_case_are_different_keys(api):
    alice, bob = api.register("alice"), api.register("bob")
    assert api.send(alice, bob, "lower", client_message_id="key-a").status == 201
    r = api.send(alice, bob, "upper", client_message_id="KEY-A")
    assert r.status == 201, r
    assert texts(api, bob) == ["lower", "upper"]


def test_a_refused_send_does_not_use_up_its_key(api):
    alice, bob = api.register("alice"), api.register("bob")
    api.block(bob, alice, 1)
    r = api.send(alice, bob, "hi", client_message_id="k")
    assert r.status == 403 and r.code == "Blocked", r
    api.block(bob, alice, 0)
    r = api.send(alice, bob, "hi", client_message_id="k")
    assert r.status == 201 and r.body["duplicate"] is False, r
    assert texts(api, bob) == ["hi"]


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


# --------------------------------------------------------------------------- blocking


def test_a_blocked_user_cannot_send_a_direct_message_to_the_blocker(api):
    alice, bob = api.register("alice"), api.register("bob")
    assert api.block(alice, bob).status == 200
    r = api.send(bob, alice, "let me in")
    assert r.status == 403 and r.code == "Blocked", r
    assert texts(api, alice) == []


def test_a_blocked_user_can_still_message_others_and_the_blocker_can_still_message_them(api):
    alice, bob, carol = api.register("alice"), api.register("bob"), api.register("carol")
    api.block(alice, bob)
    assert api.send(bob, carol, "to carol").status == 201
    assert api.send(alice, bob, "from the blocker").status == 201
    assert texts(api, carol) == ["to carol"]
    assert texts(api, bob) == ["from the blocker"]


def test_the_blocker_does_not_get_group_messages_from_the_blocked_sender_while_others_do(api):
    alice, bob, carol, dave = (api.register(n) for n in ("alice", "bob", "carol", "dave"))
    group = _group_of(api, alice, bob, carol, dave)
    api.block(alice, bob)
    r = api.send_group(bob, group, "from bob")
    assert r.status == 201, r
    assert r.body["recipients"] == 2
    assert texts(api, alice) == []
    assert texts(api, carol) == ["from bob"]
    assert texts(api, dave) == ["from bob"]
    r = api.send_group(alice, group, "from alice")
    assert r.body["recipients"] == 3, r
    assert texts(api, bob) == ["from alice"]


def test_unblocking_does_not_redeliver_but_later_messages_arrive(api):
    alice, bob, carol = api.register("alice"), api.register("bob"), api.register("carol")
    group = _group_of(api, alice, bob, carol)
    api.block(alice, bob)
    assert api.send(bob, alice, "blocked dm").status == 403
    assert api.send_group(bob, group, "blocked group").status == 201
    r = api.block(alice, bob, 0)
    assert r.status == 200 and r.body["blocked"] is False, r
    assert texts(api, alice) == []
    assert api.send(bob, alice, "dm after").status == 201
    r = api.send_group(bob, group, "group after")
    assert r.body["recipients"] == 2, r
    assert texts(api, alice) == ["dm after", "group after"]


def test_blocking_and_unblocking_are_idempotent(api):
    alice, bob = api.register("alice"), api.register("bob")
    for _ in range(2):
        r = api.block(alice, bob, 1)
        assert r.status == 200 and r.body["blocked"] is True, r
    assert api.send(bob, alice, "x").code == "Blocked"
    for _ in range(2):
        r = api.block(alice, bob, 0)
        assert r.status == 200 and r.body["blocked"] is False, r
    assert api.send(bob, alice, "y").status == 201


def test_unblocking_a_user_who_was_never_blocked_succeeds(api):
    alice, bob = api.register("alice"), api.register("bob")
    r = api.block(alice, bob, 0)
    assert r.status == 200 and r.body["blocked"] is False, r


def test_blocking_yourself_is_a_400(api):
    alice = api.register("alice")
    for to_block in (1, 0):
        r = api.block(alice, alice, to_block)
        assert r.status == 400 and r.code == "BadRequest", r
        assert "blocked_user_id" in r.body["Message"] or "blocking_user_id" in r.body["Message"], r
    assert api.send(alice, alice, "note").status == 201


def test_blocking_is_one_way_between_two_users(api):
    alice, bob = api.register("alice"), api.register("bob")
    api.block(alice, bob)
    api.block(bob, alice)
    assert api.send(alice, bob, "x").code == "Blocked"
    assert api.send(bob, alice, "y").code == "Blocked"
    api.block(alice, bob, 0)
    assert api.send(bob, alice, "z").status == 201
    assert api.send(alice, bob, "w").code == "Blocked"


# --------------------------------------------------------------------------- groups


def test_joining_and_leaving_a_group_are_idempotent(api):
    alice, bob = api.register("alice"), api.register("bob")
    group = api.create_group(alice)
    for _ in range(2):
        r = api.join(bob, group, 1)
        assert r.status == 200 and r.body["member"] is True, r
    api.join(alice, group)
    assert api.send_group(alice, group, "once").body["recipients"] == 1
    assert texts(api, bob) == ["once"]
    for _ in range(2):
        r = api.join(bob, group, 0)
        assert r.status == 200 and r.body["member"] is False, r
    assert api.send_group(bob, group).code == "NotAMember"


def test_leaving_a_group_you_never_joined_succeeds(api):
    alice = api.register("alice")
    group = api.create_group(alice)
    r = api.join(alice, group, 0)
    assert r.status == 200 and r.body["member"] is False, r


def test_a_non_member_cannot_send_to_a_group(api):
    alice, bob = api.register("alice"), api.register("bob")
    group = _group_of(api, alice)
    r = api.send_group(bob, group, "let me in")
    assert r.status == 403 and r.code == "NotAMember", r
    assert texts(api, alice) == []


def test_the_creator_of_a_group_is_not_a_member_until_joining(api):
    alice = api.register("alice")
    group = api.create_group(alice)
    r = api.send_group(alice, group)
    assert r.status == 403 and r.code == "NotAMember", r


def test_a_member_who_joins_later_does_not_get_older_messages(api):
    alice, bob = api.register("alice"), api.register("bob")
    group = _group_of(api, alice)
    assert api.send_group(alice, group, "before").body["recipients"] == 0
    api.join(bob, group)
    assert api.send_group(alice, group, "after").body["recipients"] == 1
    assert texts(api, bob) == ["after"]


def test_a_member_who_leaves_stops_receiving_and_cannot_send(api):
    alice, bob, carol = api.register("alice"), api.register("bob"), api.register("carol")
    group = _group_of(api, alice, bob, carol)
    api.send_group(alice, group, "while in")
    api.join(bob, group, 0)
    r = api.send_group(alice, group, "after leaving")
    assert r.body["recipients"] == 1, r
    assert texts(api, bob) == ["while in"]
    assert texts(api, carol) == ["while in", "after leaving"]
    assert api.send_group(bob, group).code == "NotAMember"


def test_the_sender_does_not_receive_their_own_group_message(api):
    alice, bob = api.register("alice"), api.register("bob")
    group = _group_of(api, alice, bob)
    r = api.send_group(alice, group, "mine")
    assert r.body["recipients"] == 1, r
    assert texts(api, alice) == []
    assert texts(api, bob) == ["mine"]


def test_a_group_whose_only_member_is_the_sender_has_zero_recipients(api):
    alice = api.register("alice")
    group = _group_of(api, alice)
    r = api.send_group(alice, group, "echo")
    assert r.status == 201 and r.body["recipients"] == 0, r
    assert texts(api, alice) == []


def test_several_groups_may_share_a_name_and_stay_separate(api):
    alice, bob, carol = api.register("alice"), api.register("bob"), api.register("carol")
    first = api.create_group(alice, "bambis")
    second = api.create_group(alice, "bambis")
    assert first != second
    for user in (alice, bob):
        api.join(user, first)
    for user in (alice, carol):
        api.join(user, second)
    api.send_group(alice, first, "to the first")
    api.send_group(alice, second, "to the second")
    assert [(m["text"], m["group_id"]) for m in api.read_all(bob)] == [("to the first", first)]
    assert [(m["text"], m["group_id"]) for m in api.read_all(carol)] == [("to the second", second)]


def test_a_full_group_refuses_another_member_with_409_group_full(api, monkeypatch):
    monkeypatch.setenv("MAX_GROUP_MEMBERS", "2")
    wiring.reset()
    alice, bob, carol = api.register("alice"), api.register("bob"), api.register("carol")
    group = _group_of(api, alice, bob)
    r = api.join(carol, group)
    assert r.status == 409 and r.code == "GroupFull", r
    assert api.send_group(carol, group).code == "NotAMember"
    r = api.join(alice, group)
    assert r.status == 200 and r.body["member"] is True, r
    api.join(bob, group, 0)
    r = api.join(carol, group)
    assert r.status == 200 and r.body["member"] is True, r
    assert api.send_group(alice, group, "full again").body["recipients"] == 1


def test_repeated_joins_and_leaves_do_not_miscount_the_group_size(api, monkeypatch):
    monkeypatch.setenv("MAX_GROUP_MEMBERS", "2")
    wiring.reset()
    alice, bob, carol, dave = (api.register(n) for n in ("alice", "bob", "carol", "dave"))
    group = api.create_group(alice)
    assert api.join(alice, group).status == 200
    assert api.join(alice, group).status == 200
    assert api.join(bob, group).status == 200  # a repeated join took no second seat
    assert api.join(bob, group, 0).status == 200
    assert api.join(bob, group, 0).status == 200
    assert api.join(carol, group, 0).status == 200  # leaving without being a member frees nothing
    assert api.join(carol, group).status == 200
    r = api.join(dave, group)
    assert r.status == 409 and r.code == "GroupFull", r


def test_a_group_cap_is_per_group(api, monkeypatch):
    monkeypatch.setenv("MAX_GROUP_MEMBERS", "2")
    wiring.reset()
    alice, bob, carol = api.register("alice"), api.register("bob"), api.register("carol")
    _group_of(api, alice, bob)
    second = _group_of(api, alice, carol)
    assert api.send_group(alice, second, "x").body["recipients"] == 1


def test_joining_a_group_as_another_user_is_a_403_forbidden_and_changes_nothing(api):
    alice, bob = api.register("alice"), api.register("bob")
    group = _group_of(api, alice)
    r = api.post("/update_group", {"user_id": bob.id, "group_id": group, "to_be_added": 1}, token=alice.token)
    assert r.status == 403 and r.code == "Forbidden", r
    assert api.send_group(bob, group).code == "NotAMember"
    api.join(bob, group)
    r = api.post("/update_group", {"user_id": bob.id, "group_id": group, "to_be_added": 0}, token=alice.token)
    assert r.status == 403 and r.code == "Forbidden", r
    assert api.send_group(alice, group, "still there").body["recipients"] == 1


# --------------------------------------------------------------------------- notes to self


def test_a_direct_message_to_yourself_is_delivered_to_your_own_inbox(api):
    alice = api.register("alice")
    sent = api.send(alice, alice, "note to self")
    assert sent.status == 201, sent
    [item] = api.read_all(alice)
    assert item["message_id"] == sent.body["message_id"]
    assert (item["kind"], item["sender_id"], item["group_id"], item["text"]) == (
        "direct", alice.id, None, "note to self")
