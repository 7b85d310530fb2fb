"""The messaging rules, checked on the use cases themselves."""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import List

import pytest

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
from chalicelib.usecases.results import Registered
from tests.usecases.conftest import MAX_MEMBERS

UNKNOWN = "00000000-0000-4000-8000-000000000000"


def user(uc: UseCases, name: str) -> Registered:
    return uc.accounts.register(user_name=name, source_ip="127.0.0.1")


def send(uc: UseCases, sender: Registered, recipient: Registered, text: str = "hi", key=None):
    return uc.sending.send(caller=sender.user_id, sender_id=sender.user_id, recipient_id=recipient.user_id,
                           text=text, client_message_id=key)


def send_group(uc: UseCases, sender: Registered, group_id: str, text: str = "hello", key=None):
    return uc.sending.send_group(caller=sender.user_id, sender_id=sender.user_id, group_id=group_id, text=text,
                                 client_message_id=key)


def join(uc: UseCases, member: Registered, group_id: str, to_be_added: bool = True):
    return uc.membership.set_membership(caller=member.user_id, user_id=member.user_id, group_id=group_id,
                                        member=to_be_added)


def block(uc: UseCases, blocker: Registered, blocked: Registered, to_block: bool = True):
    return uc.blocking.set_block(caller=blocker.user_id, blocking_user_id=blocker.user_id,
                                 blocked_user_id=blocked.user_id, block=to_block)


def inbox(uc: UseCases, reader: Registered, after: int = 0, limit: int = 100) -> List[dict]:
    return uc.reading.read(caller=reader.user_id, user_id=reader.user_id, after=after, since=None,
                           limit=limit).messages


def texts(uc: UseCases, reader: Registered) -> List[str]:
    return [m["text"] for m in inbox(uc, reader)]


def test_a_registered_users_token_authenticates_as_that_user(uc):
    alice = user(uc, "alice")
    assert uc.accounts.authenticate(f"Bearer {alice.token}") == alice.user_id
    with pytest.raises(Unauthorized):
        uc.accounts.authenticate(None)


def test_every_delivery_takes_the_recipients_next_seq_without_gaps(uc):
    alice, bob, carol = user(uc, "alice"), user(uc, "bob"), user(uc, "carol")
    group = uc.membership.create_group(caller=None, group_name="g").group_id
    for member in (alice, bob, carol):
        join(uc, member, group)
    send(uc, alice, carol, "a1")
    send_group(uc, bob, group, "b-group")
    send(uc, bob, carol, "b1")
    send(uc, alice, carol, "a2")
    messages = inbox(uc, carol)
    assert [(m["seq"], m["text"]) for m in messages] == [(1, "a1"), (2, "b-group"), (3, "b1"), (4, "a2")]
    assert [m["seq"] for m in inbox(uc, alice)] == [1]  # alice's own seqs: only the group message
    page = uc.reading.read(caller=carol.user_id, user_id=carol.user_id, after=1, since=None, limit=2)
    assert ([m["seq"] for m in page.messages], page.next_after, page.has_more) == ([2, 3], 3, True)


def test_a_note_to_self_arrives_in_ones_own_inbox(uc):
    alice = user(uc, "alice")
    send(uc, alice, alice, "remember the milk")
    assert texts(uc, alice) == ["remember the milk"]


def test_a_blocked_senders_direct_message_is_refused_and_stored_nowhere(uc):
    alice, bob = user(uc, "alice"), user(uc, "bob")
    block(uc, bob, alice)
    with pytest.raises(Blocked):
        send(uc, alice, bob, "let me in")
    assert texts(uc, bob) == []
    send(uc, bob, alice, "the blocker can still write")  # blocking is one way
    assert texts(uc, alice) == ["the blocker can still write"]


def test_unblocking_lets_new_messages_through_and_redelivers_nothing(uc):
    alice, bob = user(uc, "alice"), user(uc, "bob")
    group = uc.membership.create_group(caller=None, group_name="g").group_id
    for member in (alice, bob):
        join(uc, member, group)
    block(uc, bob, alice)
    assert send_group(uc, alice, group, "while blocked").recipients == 0
    block(uc, bob, alice, to_block=False)
    send(uc, alice, bob, "after")
    assert texts(uc, bob) == ["after"]


def test_blocking_is_idempotent_and_blocking_oneself_is_a_bad_request(uc):
    alice, bob = user(uc, "alice"), user(uc, "bob")
    assert block(uc, bob, alice).blocked and block(uc, bob, alice).blocked
    with pytest.raises(BadRequest) as err:
        block(uc, bob, bob)
    assert err.value.parameter == "blocked_user_id"


def test_a_group_message_reaches_members_at_send_time_except_the_sender_and_those_who_block_it(uc):
    alice, bob, carol = user(uc, "alice"), user(uc, "bob"), user(uc, "carol")
    group = uc.membership.create_group(caller=None, group_name="g").group_id
    for member in (alice, bob, carol):
        join(uc, member, group)
    block(uc, carol, alice)
    assert send_group(uc, alice, group, "first").recipients == 1  # bob only
    join(uc, bob, group, to_be_added=False)
    assert send_group(uc, alice, group, "second").recipients == 0
    join(uc, bob, group)
    assert send_group(uc, alice, group, "third").recipients == 1
    assert texts(uc, bob) == ["first", "third"]  # nothing sent while he was out
    assert texts(uc, carol) == [] and texts(uc, alice) == []


def test_only_members_send_to_a_group(uc):
    alice, bob = user(uc, "alice"), user(uc, "bob")
    group = uc.membership.create_group(caller=None, group_name="g").group_id
    join(uc, bob, group)
    with pytest.raises(NotAMember):
        send_group(uc, alice, group)
    assert texts(uc, bob) == []


def test_a_full_group_refuses_one_more_member_and_joining_twice_takes_one_seat(uc):
    members = [user(uc, f"m{i}") for i in range(MAX_MEMBERS + 1)]
    group = uc.membership.create_group(caller=None, group_name="g").group_id
    for member in members[:MAX_MEMBERS]:
        assert join(uc, member, group).member and join(uc, member, group).member
    with pytest.raises(GroupFull):
        join(uc, members[-1], group)
    join(uc, members[0], group, to_be_added=False)
    assert join(uc, members[-1], group).member  # the seat freed by leaving


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


def test_acting_as_someone_else_is_forbidden(uc):
    alice, bob = user(uc, "alice"), user(uc, "bob")
    with pytest.raises(Forbidden):
        uc.sending.send(caller=bob.user_id, sender_id=alice.user_id, recipient_id=bob.user_id, text="x",
                        client_message_id=None)
    with pytest.raises(Forbidden):
        uc.reading.read(caller=alice.user_id, user_id=bob.user_id, after=0, since=None, limit=10)
    assert texts(uc, bob) == []


def test_a_retry_with_the_same_key_answers_the_original_and_delivers_nothing_new(uc):
    alice, bob, carol = user(uc, "alice"), user(uc, "bob"), user(uc, "carol")
    first = send(uc, alice, bob, "once", key="k-1")
    again = send(uc, alice, bob, "once", key="k-1")
    assert (again.message_id, again.sent_at, first.duplicate, again.duplicate) == (
        first.message_id, first.sent_at, False, True)
    assert texts(uc, bob) == ["once"]
    group = uc.membership.create_group(caller=None, group_name="g").group_id
    for member in (alice, bob, carol):
        join(uc, member, group)
    sent = send_group(uc, alice, group, "group once", key="k-2")
    replay = send_group(uc, alice, group, "group once", key="k-2")
    assert (replay.message_id, replay.recipients, replay.duplicate) == (sent.message_id, 2, True)
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


def test_a_cursor_beyond_the_newest_seq_names_the_newest_seq(uc):
    alice, bob = user(uc, "alice"), user(uc, "bob")
    send(uc, alice, bob)
    with pytest.raises(CursorAhead) as err:
        inbox(uc, bob, after=5)
    assert err.value.newest_seq == 1
    assert inbox(uc, bob, after=1) == []


def test_a_timestamp_read_is_inclusive_and_an_empty_one_hands_back_the_newest_seq(uc, deps):
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
