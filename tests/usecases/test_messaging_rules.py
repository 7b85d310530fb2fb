"""The messaging rules of docs/api.md, checked once, on the use cases
themselves (on SQLite and on MariaDB): tokens, seqs and the cursor, notes to
self, blocking, groups and membership, idempotent sends. What HTTP adds to
them (status codes, the error envelope, the Idempotency-Key header, which
parameter a 400 names) is tests/integration/test_rules_over_http.py's."""
from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta

import pytest

from chalicelib.auth import Identity
from chalicelib.errors import (
    BadRequest,
    Blocked,
    CursorAhead,
    Forbidden,
    GroupFull,
    GroupNotFound,
    IdempotencyConflict,
    NotAMember,
    Unauthorized,
    UserNotFound,
)
from chalicelib.usecases import UseCases
from tests.usecases.conftest import MAX_MEMBERS
from tests.usecases.steps import UNKNOWN, block, group_of, inbox, join, send, send_group, texts, user

# --------------------------------------------------------------------------- accounts


def test_a_registered_users_token_authenticates_as_that_user(uc):
    alice = user(uc, "alice")
    assert uc.accounts.authenticate(f"Bearer {alice.token}") == Identity(alice.user_id, alice.session_id)
    with pytest.raises(Unauthorized):
        uc.accounts.authenticate(None)


def test_acting_as_someone_else_is_forbidden_and_changes_nothing(uc):
    alice, bob = user(uc, "alice"), user(uc, "bob")
    group = group_of(uc, alice)
    with pytest.raises(Forbidden):
        uc.sending.send(caller=bob.user_id, sender_id=alice.user_id, recipient_id=bob.user_id, text="x",
                        client_message_id=None)
    with pytest.raises(Forbidden):
        uc.reading.read(caller=alice.user_id, user_id=bob.user_id, after=0, since=None, limit=10)
    assert texts(uc, bob) == []
    with pytest.raises(Forbidden):  # alice adding bob
        uc.membership.set_membership(caller=alice.user_id, user_id=bob.user_id, group_id=group, member=True)
    with pytest.raises(NotAMember):
        send_group(uc, bob, group)
    join(uc, bob, group)
    with pytest.raises(Forbidden):  # alice removing bob
        uc.membership.set_membership(caller=alice.user_id, user_id=bob.user_id, group_id=group, member=False)
    assert send_group(uc, alice, group, "still there").recipients == 1
    assert texts(uc, bob) == ["still there"]


def test_unknown_users_and_groups_are_named(uc):
    alice = user(uc, "alice")
    with pytest.raises(UserNotFound) as err:
        uc.sending.send(caller=alice.user_id, sender_id=alice.user_id, recipient_id=UNKNOWN, text="x",
                        client_message_id=None)
    assert "receiving_user_id" in err.value.message
    with pytest.raises(GroupNotFound):
        send_group(uc, alice, UNKNOWN)
    with pytest.raises(GroupNotFound):
        join(uc, alice, UNKNOWN)
    with pytest.raises(UserNotFound):
        uc.reading.read(caller=None, user_id=UNKNOWN, after=0, since=None, limit=10)


# --------------------------------------------------------------------------- seqs and the cursor


def test_every_delivery_takes_the_recipients_next_seq_without_gaps(uc):
    alice, bob, carol = user(uc, "alice"), user(uc, "bob"), user(uc, "carol")
    group = group_of(uc, alice, bob, carol)
    send(uc, alice, carol, "a1")
    send_group(uc, bob, group, "b-group")
    send(uc, bob, carol, "b1")
    send(uc, alice, carol, "a2")
    messages = inbox(uc, carol)  # after carol's own join (seq 1)
    assert [(m["seq"], m["text"]) for m in messages] == [(2, "a1"), (3, "b-group"), (4, "b1"), (5, "a2")]
    # alice's stream: three joins, a1 (hers), the group message, a2 (hers); she received one
    assert [m["seq"] for m in inbox(uc, alice)] == [5]
    page = uc.reading.read(caller=carol.user_id, user_id=carol.user_id, after=2, since=None, limit=2)
    assert ([m["seq"] for m in page.messages], page.next_after, page.has_more) == ([3, 4], 4, True)


def test_a_cursor_beyond_the_newest_seq_names_the_newest_seq(uc):
    alice, bob = user(uc, "alice"), user(uc, "bob")
    send(uc, alice, bob)
    with pytest.raises(CursorAhead) as err:
        inbox(uc, bob, after=5)
    assert err.value.newest_seq == 1
    assert inbox(uc, bob, after=1) == []


def test_a_timestamp_read_is_inclusive_and_an_empty_one_hands_back_the_newest_seq(uc):
    alice, bob = user(uc, "alice"), user(uc, "bob")
    sent = send(uc, alice, bob, "at a time")
    at = datetime.fromisoformat(sent.sent_at.rstrip("Z"))
    page = uc.reading.read(caller=bob.user_id, user_id=bob.user_id, after=None, since=at, limit=10)
    assert [m["text"] for m in page.messages] == ["at a time"]
    later = uc.reading.read(caller=bob.user_id, user_id=bob.user_id, after=None, since=at + timedelta(microseconds=1),
                            limit=10)
    assert (later.messages, later.next_after) == ([], 1)
    with pytest.raises(BadRequest):
        uc.reading.read(caller=bob.user_id, user_id=bob.user_id, after=0, since=at, limit=10)


# --------------------------------------------------------------------------- notes to self


def test_a_note_to_self_arrives_in_ones_own_inbox_as_a_direct_message(uc):
    alice = user(uc, "alice")
    sent = send(uc, alice, alice, "remember the milk")
    [item] = inbox(uc, alice)
    assert item["message_id"] == sent.message_id
    assert (item["kind"], item["sender_id"], item["group_id"], item["text"]) == (
        "direct", alice.user_id, None, "remember the milk")


# --------------------------------------------------------------------------- blocking


def test_a_blocked_senders_direct_message_is_refused_and_stored_nowhere(uc):
    alice, bob, carol = user(uc, "alice"), user(uc, "bob"), user(uc, "carol")
    block(uc, bob, alice)
    with pytest.raises(Blocked):
        send(uc, alice, bob, "let me in")
    assert texts(uc, bob) == []
    send(uc, alice, carol, "to carol")  # only the blocker refuses the blocked user
    send(uc, bob, alice, "the blocker can still write")  # blocking is one way
    assert texts(uc, carol) == ["to carol"]
    assert texts(uc, alice) == ["the blocker can still write"]


def test_two_users_may_block_each_other_and_each_block_lifts_alone(uc):
    alice, bob = user(uc, "alice"), user(uc, "bob")
    block(uc, alice, bob)
    block(uc, bob, alice)
    with pytest.raises(Blocked):
        send(uc, alice, bob, "x")
    with pytest.raises(Blocked):
        send(uc, bob, alice, "y")
    block(uc, alice, bob, to_block=False)
    send(uc, bob, alice, "z")
    with pytest.raises(Blocked):
        send(uc, alice, bob, "w")
    assert texts(uc, alice) == ["z"] and texts(uc, bob) == []


def test_a_blocked_users_group_message_skips_only_the_blocker_and_the_blockers_reaches_it(uc):
    alice, bob, carol, dave = (user(uc, n) for n in ("alice", "bob", "carol", "dave"))
    group = group_of(uc, alice, bob, carol, dave)
    block(uc, alice, bob)
    assert send_group(uc, bob, group, "from bob").recipients == 2
    assert texts(uc, alice) == []
    assert texts(uc, carol) == ["from bob"] and texts(uc, dave) == ["from bob"]
    assert send_group(uc, alice, group, "from alice").recipients == 3
    assert texts(uc, bob) == ["from alice"]


def test_unblocking_lets_new_messages_through_and_redelivers_nothing(uc):
    alice, bob, carol = user(uc, "alice"), user(uc, "bob"), user(uc, "carol")
    group = group_of(uc, alice, bob, carol)
    block(uc, bob, alice)
    with pytest.raises(Blocked):
        send(uc, alice, bob, "blocked dm")
    assert send_group(uc, alice, group, "while blocked").recipients == 1  # carol only
    assert block(uc, bob, alice, to_block=False).blocked is False
    assert texts(uc, bob) == []
    send(uc, alice, bob, "dm after")
    assert send_group(uc, alice, group, "group after").recipients == 2
    assert texts(uc, bob) == ["dm after", "group after"]


def test_blocking_and_unblocking_are_idempotent(uc):
    alice, bob = user(uc, "alice"), user(uc, "bob")
    assert block(uc, bob, alice).blocked is True and block(uc, bob, alice).blocked is True
    with pytest.raises(Blocked):
        send(uc, alice, bob, "x")
    assert block(uc, bob, alice, to_block=False).blocked is False
    assert block(uc, bob, alice, to_block=False).blocked is False
    send(uc, alice, bob, "y")
    assert texts(uc, bob) == ["y"]


def test_unblocking_a_user_who_was_never_blocked_succeeds(uc):
    alice, bob = user(uc, "alice"), user(uc, "bob")
    assert block(uc, alice, bob, to_block=False).blocked is False


def test_blocking_or_unblocking_oneself_is_a_bad_request_naming_blocked_user_id(uc):
    alice = user(uc, "alice")
    for to_block in (True, False):
        with pytest.raises(BadRequest) as err:
            block(uc, alice, alice, to_block)
        assert err.value.parameter == "blocked_user_id"
    send(uc, alice, alice, "note")  # a note to self is still fine
    assert texts(uc, alice) == ["note"]


# --------------------------------------------------------------------------- groups and membership


def test_a_group_message_reaches_members_at_send_time_except_the_sender_and_those_who_block_it(uc):
    alice, bob, carol = user(uc, "alice"), user(uc, "bob"), user(uc, "carol")
    group = group_of(uc, alice, bob, carol)
    block(uc, carol, alice)
    assert send_group(uc, alice, group, "first").recipients == 1  # bob only
    join(uc, bob, group, to_be_added=False)
    assert send_group(uc, alice, group, "second").recipients == 0
    join(uc, bob, group)
    assert send_group(uc, alice, group, "third").recipients == 1
    assert texts(uc, bob) == ["first", "third"]  # nothing sent while he was out
    assert texts(uc, carol) == [] and texts(uc, alice) == []  # nor to the sender


def test_a_group_whose_only_member_is_the_sender_has_zero_recipients(uc):
    alice = user(uc, "alice")
    group = group_of(uc, alice)
    assert send_group(uc, alice, group, "echo").recipients == 0
    assert texts(uc, alice) == []


def test_only_members_send_to_a_group(uc):
    alice, bob = user(uc, "alice"), user(uc, "bob")
    group = group_of(uc, bob)
    with pytest.raises(NotAMember):
        send_group(uc, alice, group)
    assert texts(uc, bob) == []


def test_the_creator_of_a_group_is_not_a_member_until_joining(uc):
    alice = user(uc, "alice")
    group = uc.membership.create_group(caller=alice.user_id, group_name="mine").group_id
    with pytest.raises(NotAMember):
        send_group(uc, alice, group)
    join(uc, alice, group)
    assert send_group(uc, alice, group).recipients == 0


def test_joining_and_leaving_a_group_are_idempotent(uc):
    alice, bob = user(uc, "alice"), user(uc, "bob")
    group = uc.membership.create_group(caller=alice.user_id, group_name="g").group_id
    assert join(uc, bob, group).member is True and join(uc, bob, group).member is True
    join(uc, alice, group)
    assert send_group(uc, alice, group, "once").recipients == 1  # two joins, one seat, one delivery
    assert texts(uc, bob) == ["once"]
    assert join(uc, bob, group, False).member is False and join(uc, bob, group, False).member is False
    with pytest.raises(NotAMember):
        send_group(uc, bob, group)


def test_leaving_a_group_one_never_joined_succeeds(uc):
    alice = user(uc, "alice")
    group = uc.membership.create_group(caller=alice.user_id, group_name="g").group_id
    assert join(uc, alice, group, to_be_added=False).member is False


def test_a_member_who_joins_later_does_not_get_older_messages(uc):
    alice, bob = user(uc, "alice"), user(uc, "bob")
    group = group_of(uc, alice)
    assert send_group(uc, alice, group, "before").recipients == 0
    join(uc, bob, group)
    assert send_group(uc, alice, group, "after").recipients == 1
    assert texts(uc, bob) == ["after"]


def test_a_member_who_leaves_stops_receiving_and_cannot_send(uc):
    alice, bob, carol = user(uc, "alice"), user(uc, "bob"), user(uc, "carol")
    group = group_of(uc, alice, bob, carol)
    send_group(uc, alice, group, "while in")
    join(uc, bob, group, to_be_added=False)
    assert send_group(uc, alice, group, "after leaving").recipients == 1
    assert texts(uc, bob) == ["while in"]
    assert texts(uc, carol) == ["while in", "after leaving"]
    with pytest.raises(NotAMember):
        send_group(uc, bob, group)


def test_several_groups_may_share_a_name_and_stay_separate(uc):
    alice, bob, carol = user(uc, "alice"), user(uc, "bob"), user(uc, "carol")
    first = group_of(uc, alice, bob, name="bambis")
    second = group_of(uc, alice, carol, name="bambis")
    assert first != second
    send_group(uc, alice, first, "to the first")
    send_group(uc, alice, second, "to the second")
    assert [(m["text"], m["group_id"]) for m in inbox(uc, bob)] == [("to the first", first)]
    assert [(m["text"], m["group_id"]) for m in inbox(uc, carol)] == [("to the second", second)]


def test_a_full_group_refuses_one_more_member_and_joining_twice_takes_one_seat(uc):
    members = [user(uc, f"m{i}") for i in range(MAX_MEMBERS + 1)]
    group = uc.membership.create_group(caller=None, group_name="g").group_id
    for member in members[:MAX_MEMBERS]:
        # the last one's second join finds the group full: a member may still join
        assert join(uc, member, group).member and join(uc, member, group).member
    with pytest.raises(GroupFull):
        join(uc, members[-1], group)
    with pytest.raises(NotAMember):  # the refused join left no membership behind
        send_group(uc, members[-1], group)
    join(uc, members[0], group, to_be_added=False)
    assert join(uc, members[-1], group).member  # the seat freed by leaving
    assert send_group(uc, members[1], group, "full again").recipients == MAX_MEMBERS - 1


def test_repeated_joins_and_leaves_do_not_miscount_the_group_size(deps):
    uc = UseCases(dataclasses.replace(deps, max_group_members=2))
    alice, bob, carol, dave = (user(uc, n) for n in ("alice", "bob", "carol", "dave"))
    group = uc.membership.create_group(caller=alice.user_id, group_name="g").group_id
    assert join(uc, alice, group).member and join(uc, alice, group).member
    assert join(uc, bob, group).member  # a repeated join took no second seat
    assert not join(uc, bob, group, False).member and not join(uc, bob, group, False).member
    assert not join(uc, carol, group, False).member  # leaving without being a member frees nothing
    assert join(uc, carol, group).member
    with pytest.raises(GroupFull):
        join(uc, dave, group)


def test_the_member_cap_is_per_group(deps):
    uc = UseCases(dataclasses.replace(deps, max_group_members=2))
    alice, bob, carol = user(uc, "alice"), user(uc, "bob"), user(uc, "carol")
    group_of(uc, alice, bob)  # full
    second = group_of(uc, alice, carol)
    assert send_group(uc, alice, second, "x").recipients == 1


# --------------------------------------------------------------------------- idempotent sends


def test_a_retry_with_the_same_key_answers_the_original_and_delivers_nothing_new(uc):
    alice, bob, carol = user(uc, "alice"), user(uc, "bob"), user(uc, "carol")
    first = send(uc, alice, bob, "once", key="k-1")
    again = send(uc, alice, bob, "once", key="k-1")
    assert (again.message_id, again.sent_at, again.recipients, first.duplicate, again.duplicate) == (
        first.message_id, first.sent_at, None, False, True)
    assert [(m["message_id"], m["text"]) for m in inbox(uc, bob)] == [(first.message_id, "once")]
    group = group_of(uc, alice, bob, carol)
    sent = send_group(uc, alice, group, "group once", key="k-2")
    replay = send_group(uc, alice, group, "group once", key="k-2")
    assert (sent.recipients, sent.duplicate) == (2, False)
    assert (replay.message_id, replay.sent_at, replay.recipients, replay.duplicate) == (
        sent.message_id, sent.sent_at, 2, True)
    assert texts(uc, bob) == ["once", "group once"]
    assert texts(uc, carol) == ["group once"]


def test_the_same_key_for_another_text_or_recipient_is_a_conflict(uc):
    alice, bob, carol = user(uc, "alice"), user(uc, "bob"), user(uc, "carol")
    send(uc, alice, bob, "original", key="k")
    with pytest.raises(IdempotencyConflict):
        send(uc, alice, bob, "changed", key="k")
    with pytest.raises(IdempotencyConflict):
        send(uc, alice, carol, "original", key="k")
    send(uc, bob, alice, "keys are per sender", key="k")
    assert texts(uc, bob) == ["original"] and texts(uc, carol) == []


def test_a_key_names_one_message_across_direct_and_group_sends(uc):
    alice, bob = user(uc, "alice"), user(uc, "bob")
    group, other = group_of(uc, alice, bob), group_of(uc, alice, bob)
    send(uc, alice, bob, "hi", key="k")
    with pytest.raises(IdempotencyConflict):  # a direct message's key, for a group
        send_group(uc, alice, group, "hi", key="k")
    send_group(uc, alice, group, "hi", key="g")
    with pytest.raises(IdempotencyConflict):  # a group message's key, for another group
        send_group(uc, alice, other, "hi", key="g")
    assert texts(uc, bob) == ["hi", "hi"]


def test_the_same_key_used_by_another_sender_is_an_independent_message(uc):
    alice, bob, carol = user(uc, "alice"), user(uc, "bob"), user(uc, "carol")
    a = send(uc, alice, carol, "from alice", key="k")
    b = send(uc, bob, carol, "from bob", key="k")
    assert a.message_id != b.message_id and b.duplicate is False
    assert texts(uc, carol) == ["from alice", "from bob"]


def test_keys_that_differ_only_in_letter_case_are_different_keys(uc):
    alice, bob = user(uc, "alice"), user(uc, "bob")
    lower = send(uc, alice, bob, "lower", key="key-a")
    upper = send(uc, alice, bob, "upper", key="KEY-A")
    assert upper.duplicate is False and upper.message_id != lower.message_id
    assert texts(uc, bob) == ["lower", "upper"]


def test_a_key_of_64_printable_ascii_characters_is_kept_whole(uc):
    alice, bob = user(uc, "alice"), user(uc, "bob")
    key = ("!~0aZ" * 13)[:64]
    first = send(uc, alice, bob, "hi", key=key)
    again = send(uc, alice, bob, "hi", key=key)
    assert (again.message_id, again.duplicate) == (first.message_id, True)
    other = send(uc, alice, bob, "hi", key=key[:63] + "_")  # differs in the 64th character only
    assert (other.duplicate, other.message_id != first.message_id) == (False, True)
    assert texts(uc, bob) == ["hi", "hi"]


def test_a_refused_send_does_not_use_up_its_key(uc):
    alice, bob = user(uc, "alice"), user(uc, "bob")
    block(uc, bob, alice)
    with pytest.raises(Blocked):
        send(uc, alice, bob, "hi", key="k")
    block(uc, bob, alice, to_block=False)
    assert send(uc, alice, bob, "hi", key="k").duplicate is False
    assert texts(uc, bob) == ["hi"]
