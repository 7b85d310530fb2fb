"""The stream of docs/api.md ("The stream"), on the use cases themselves (on
SQLite and on MariaDB): every event type and who gets it, one gapless
sequence across them all, editing and deleting, read state and receipts,
memberships, /read_messages' original contract over the stream, the
bootstrapping reads (conversations, history, group info) and retention of
every event type. What HTTP adds (statuses, which parameter a 400 names) is
tests/integration/test_stream_over_http.py's."""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from chalicelib.errors import (
    BadRequest,
    CursorAhead,
    EditWindowClosed,
    Forbidden,
    GroupNotFound,
    MessageDeleted,
    MessageNotFound,
    NotAMember,
)
from chalicelib.usecases.results import iso
from tests.usecases.steps import UNKNOWN, block, group_of, inbox, join, send, send_group, texts, user
from tests.usecases.stream_steps import (
    at,
    conversations,
    count,
    delete,
    edit,
    group_info,
    history,
    mark_read,
    me,
    newest_seq,
    stored_message,
    stream,
    types,
)

DAY0 = datetime(2026, 3, 1, 9, 30)


def message_event(seq, sent, sender, *, recipient=None, group_id=None, text, edited_at=None, deleted=False):
    return {"seq": seq, "type": "message", "message_id": sent.message_id,
            "kind": "group" if group_id else "direct", "sender_id": sender.user_id,
            "recipient_id": recipient.user_id if recipient else None, "group_id": group_id, "text": text,
            "sent_at": sent.sent_at, "edited_at": edited_at, "deleted": deleted, "attachments": []}


def member_event(seq, group_id, name, who, member=True):
    return {"seq": seq, "type": "member", "group_id": group_id, "group_name": name, "user_id": who.user_id,
            "member": member}


# --------------------------------------------------------------------------- message events


def test_a_direct_message_is_an_event_in_the_recipients_stream_and_in_the_senders(uc):
    alice, bob = user(uc, "alice"), user(uc, "bob")
    sent = send(uc, alice, bob, "hello bob")
    expected = message_event(1, sent, alice, recipient=bob, text="hello bob")
    assert stream(uc, bob) == [expected]
    assert stream(uc, alice) == [expected]  # the sender's other devices read it too
    reply = send(uc, bob, alice, "hi alice")
    assert stream(uc, alice, after=1) == [message_event(2, reply, bob, recipient=alice, text="hi alice")]


def test_a_group_message_is_an_event_for_every_member_and_the_sender_and_counts_only_the_recipients(uc):
    alice, bob, carol = user(uc, "alice"), user(uc, "bob"), user(uc, "carol")
    group = group_of(uc, alice, bob, carol, name="the group")
    sent = send_group(uc, alice, group, "to all")
    assert sent.recipients == 2
    # joins: alice 3 (hers, bob's, carol's), bob 2, carol 1
    for reader, seq in ((alice, 4), (bob, 3), (carol, 2)):
        [event] = stream(uc, reader, after=seq - 1)
        assert event == message_event(seq, sent, alice, group_id=group, text="to all"), reader.user_name


def test_a_note_to_self_is_one_event_in_ones_own_stream(uc):
    alice = user(uc, "alice")
    sent = send(uc, alice, alice, "milk")
    assert stream(uc, alice) == [message_event(1, sent, alice, recipient=alice, text="milk")]


def test_a_blocked_group_members_stream_gets_nothing_of_the_blocked_sender(uc):
    alice, bob, carol = user(uc, "alice"), user(uc, "bob"), user(uc, "carol")
    group = group_of(uc, alice, bob, carol)
    block(uc, carol, alice)
    sent = send_group(uc, alice, group, "not for carol")
    assert sent.recipients == 1
    assert types(stream(uc, carol)) == ["member"]
    edit(uc, alice, sent.message_id, "edited")
    delete(uc, alice, sent.message_id)
    assert types(stream(uc, carol)) == ["member"]  # not a holder: no edit or delete event either


# --------------------------------------------------------------------------- one sequence, every type


def test_every_event_type_takes_the_next_seq_of_one_gapless_sequence(uc):
    alice, bob, carol = user(uc, "alice"), user(uc, "bob"), user(uc, "carol")
    group = group_of(uc, alice, bob)  # member events
    m1 = send(uc, alice, bob, "one")  # message
    g1 = send_group(uc, bob, group, "group one")
    edit(uc, alice, m1.message_id, "one, edited")  # edit
    mark_read(uc, bob, m1.message_id, with_user=alice)  # read (bob), receipt (alice)
    mark_read(uc, alice, g1.message_id, group_id=group)  # read (alice only)
    delete(uc, bob, g1.message_id)  # delete
    join(uc, carol, group)
    join(uc, bob, group, False)  # leave
    send(uc, carol, alice, "from carol")
    expected_types = {
        alice.user_id: ["member", "member", "message", "message", "edit", "receipt", "read", "delete", "member",
                        "member", "message"],
        bob.user_id: ["member", "message", "message", "edit", "read", "delete", "member", "member"],
        carol.user_id: ["member", "member", "message"],
    }
    for reader in (alice, bob, carol):
        events = stream(uc, reader)
        assert types(events) == expected_types[reader.user_id], reader.user_name
        assert [e["seq"] for e in events] == list(range(1, len(events) + 1)), reader.user_name
        # page by page, two at a time, gives the same events
        assert stream(uc, reader, limit=2) == events
        last = events[-1]["seq"]
        with pytest.raises(CursorAhead) as err:
            uc.reading.sync(caller=reader.user_id, user_id=reader.user_id, after=last + 1, limit=10)
        assert err.value.newest_seq == last
        page = uc.reading.sync(caller=reader.user_id, user_id=reader.user_id, after=last, limit=10)
        assert (page.events, page.next_after, page.has_more) == ([], last, False)


def test_a_sync_page_says_has_more_and_next_after_is_its_last_seq(uc):
    alice, bob = user(uc, "alice"), user(uc, "bob")
    for i in range(5):
        send(uc, alice, bob, f"m{i}")
    page = uc.reading.sync(caller=bob.user_id, user_id=bob.user_id, after=1, limit=3)
    assert ([e["seq"] for e in page.events], page.next_after, page.has_more) == ([2, 3, 4], 4, True)
    page = uc.reading.sync(caller=bob.user_id, user_id=bob.user_id, after=4, limit=3)
    assert ([e["seq"] for e in page.events], page.next_after, page.has_more) == ([5], 5, False)


def test_another_users_stream_is_forbidden(uc):
    alice, bob = user(uc, "alice"), user(uc, "bob")
    with pytest.raises(Forbidden):
        uc.reading.sync(caller=alice.user_id, user_id=bob.user_id, after=0, limit=10)


# --------------------------------------------------------------------------- editing


def test_an_edit_is_an_event_to_every_holder_and_every_event_shows_the_current_text(deps):
    uc = at(deps, DAY0)
    alice, bob = user(uc, "alice"), user(uc, "bob")
    sent = send(uc, alice, bob, "draft")
    later = at(deps, DAY0 + timedelta(hours=1))
    edited = edit(later, alice, sent.message_id, "final")
    edited_at = iso(DAY0 + timedelta(hours=1))
    assert (edited.message_id, edited.edited_at) == (sent.message_id, edited_at)
    for reader in (alice, bob):
        assert stream(uc, reader) == [
            message_event(1, sent, alice, recipient=bob, text="final", edited_at=edited_at),
            {"seq": 2, "type": "edit", "message_id": sent.message_id, "kind": "direct", "sender_id": alice.user_id,
             "recipient_id": bob.user_id, "group_id": None, "text": "final", "edited_at": edited_at},
        ]
    assert stored_message(deps, sent.message_id) == ("final", True, False)
    assert [(m["seq"], m["text"]) for m in inbox(uc, bob)] == [(1, "final")]


def test_every_edit_of_a_group_message_reaches_every_stream_that_holds_it_even_after_leaving(uc):
    alice, bob, carol, dave = (user(uc, n) for n in ("alice", "bob", "carol", "dave"))
    group = group_of(uc, alice, bob, carol)
    sent = send_group(uc, alice, group, "v1")
    join(uc, carol, group, False)  # carol left, and still holds the message
    join(uc, dave, group)  # dave joined after it: does not hold it
    edit(uc, alice, sent.message_id, "v2")
    edit(uc, alice, sent.message_id, "v3")
    for reader in (alice, bob, carol):
        events = [e for e in stream(uc, reader) if e.get("message_id") == sent.message_id]
        assert types(events) == ["message", "edit", "edit"], reader.user_name
        assert {e["text"] for e in events} == {"v3"}, reader.user_name  # every event shows the current text
    assert "edit" not in types(stream(uc, dave))


def test_a_note_to_self_edited_is_one_edit_event(uc):
    alice = user(uc, "alice")
    sent = send(uc, alice, alice, "note")
    edit(uc, alice, sent.message_id, "better note")
    assert [(e["type"], e["text"]) for e in stream(uc, alice)] == [("message", "better note"), ("edit", "better note")]


def test_only_the_sender_may_edit_and_a_message_one_does_not_hold_is_not_found(uc, deps):
    alice, bob, carol = user(uc, "alice"), user(uc, "bob"), user(uc, "carol")
    group = group_of(uc, alice, bob)
    direct = send(uc, alice, bob, "mine")
    grouped = send_group(uc, alice, group, "mine too")
    before = {u.user_id: stream(uc, u) for u in (alice, bob, carol)}
    for message_id in (direct.message_id, grouped.message_id):
        with pytest.raises(Forbidden):
            edit(uc, bob, message_id, "bob's words")  # bob holds it, but did not send it
        with pytest.raises(MessageNotFound):
            edit(uc, carol, message_id, "carol's words")  # carol does not even hold it
    with pytest.raises(MessageNotFound):
        edit(uc, alice, UNKNOWN, "no such message")
    with pytest.raises(Forbidden):  # acting as someone else
        uc.conversing.edit(caller=bob.user_id, user_id=alice.user_id, message_id=direct.message_id, text="x")
    assert {u.user_id: stream(uc, u) for u in (alice, bob, carol)} == before
    assert stored_message(deps, direct.message_id) == ("mine", False, False)


def test_an_edit_after_the_edit_window_is_refused_and_changes_nothing(deps):
    early = at(deps, DAY0)
    alice, bob = user(early, "alice"), user(early, "bob")
    sent = send(early, alice, bob, "on time")
    window = timedelta(hours=deps.edit_window_hours)
    edit(at(deps, DAY0 + window - timedelta(seconds=1)), alice, sent.message_id, "just in time")
    with pytest.raises(EditWindowClosed):
        edit(at(deps, DAY0 + window + timedelta(seconds=1)), alice, sent.message_id, "too late")
    assert types(stream(early, bob)) == ["message", "edit"]
    assert stored_message(deps, sent.message_id) == ("just in time", True, False)
    # EDIT_WINDOW_HOURS is the window
    short = at(deps, DAY0 + timedelta(hours=2), edit_window_hours=1)
    with pytest.raises(EditWindowClosed):
        edit(short, alice, send(early, alice, bob, "sent at DAY0").message_id, "two hours later")


def test_a_deleted_message_cannot_be_edited(uc, deps):
    alice, bob = user(uc, "alice"), user(uc, "bob")
    sent = send(uc, alice, bob, "gone soon")
    delete(uc, alice, sent.message_id)
    with pytest.raises(MessageDeleted):
        edit(uc, alice, sent.message_id, "back again")
    assert types(stream(uc, bob)) == ["message", "delete"]
    assert stored_message(deps, sent.message_id) == ("", False, True)


# --------------------------------------------------------------------------- deleting


def test_a_deletion_erases_the_text_and_is_a_delete_event_to_every_holder(deps):
    uc = at(deps, DAY0)
    alice, bob, carol = user(uc, "alice"), user(uc, "bob"), user(uc, "carol")
    group = group_of(uc, alice, bob, carol)
    sent = send_group(uc, alice, group, "secret")
    edit(uc, alice, sent.message_id, "secret, edited")
    years_later = at(deps, DAY0 + timedelta(days=3 * 365))  # at any age
    answer = delete(years_later, alice, sent.message_id)
    assert (answer.message_id, answer.deleted) == (sent.message_id, True)
    assert stored_message(deps, sent.message_id) == ("", True, True)
    for reader in (alice, bob, carol):
        events = [e for e in stream(uc, reader) if e.get("message_id") == sent.message_id]
        assert types(events) == ["message", "edit", "delete"], reader.user_name
        message, edited, deleted = events
        assert (message["text"], message["deleted"]) == (None, True)
        assert edited["text"] is None
        assert deleted == {"seq": deleted["seq"], "type": "delete", "message_id": sent.message_id, "kind": "group",
                           "sender_id": alice.user_id, "recipient_id": None, "group_id": group}
        assert "secret" not in repr(events)
    assert texts(uc, bob) == []  # /read_messages leaves it out


def test_deleting_is_idempotent_and_a_second_deletion_adds_no_event(uc):
    alice, bob = user(uc, "alice"), user(uc, "bob")
    sent = send(uc, alice, bob, "twice")
    first = delete(uc, alice, sent.message_id)
    again = delete(uc, alice, sent.message_id)
    assert first == again
    assert types(stream(uc, bob)) == ["message", "delete"]
    assert types(stream(uc, alice)) == ["message", "delete"]


def test_only_the_sender_may_delete_and_a_message_one_does_not_hold_is_not_found(uc, deps):
    alice, bob, carol = user(uc, "alice"), user(uc, "bob"), user(uc, "carol")
    sent = send(uc, alice, bob, "keep")
    with pytest.raises(Forbidden):
        delete(uc, bob, sent.message_id)
    with pytest.raises(MessageNotFound):
        delete(uc, carol, sent.message_id)
    with pytest.raises(MessageNotFound):
        delete(uc, alice, UNKNOWN)
    assert types(stream(uc, bob)) == ["message"]
    assert stored_message(deps, sent.message_id) == ("keep", False, False)
    delete(uc, alice, sent.message_id)
    with pytest.raises(Forbidden):  # still not bob's, deleted or not
        delete(uc, bob, sent.message_id)


# --------------------------------------------------------------------------- read state and receipts


def test_marking_read_is_a_read_event_for_the_reader_and_a_receipt_for_the_other(uc):
    alice, bob = user(uc, "alice"), user(uc, "bob")
    m1, m2 = send(uc, alice, bob, "one"), send(uc, alice, bob, "two")
    assert mark_read(uc, bob, m2.message_id, with_user=alice).message_id == m2.message_id
    assert stream(uc, bob, after=2) == [{"seq": 3, "type": "read", "with_user_id": alice.user_id, "group_id": None,
                                         "message_id": m2.message_id}]
    assert stream(uc, alice, after=2) == [{"seq": 3, "type": "receipt", "with_user_id": bob.user_id,
                                           "user_id": bob.user_id, "message_id": m2.message_id}]
    # never moves back: an older message, or the same one, answers and changes nothing
    assert mark_read(uc, bob, m1.message_id, with_user=alice).message_id == m1.message_id
    mark_read(uc, bob, m2.message_id, with_user=alice)
    assert (newest_seq(uc, bob), newest_seq(uc, alice)) == (3, 3)
    [c] = conversations(uc, bob).conversations
    assert (c["read_up_to"], c["read_up_to_seq"]) == (m2.message_id, 2)


def test_the_sender_may_mark_its_own_message_read_in_a_conversation(uc):
    alice, bob = user(uc, "alice"), user(uc, "bob")
    sent = send(uc, alice, bob, "mine")
    mark_read(uc, alice, sent.message_id, with_user=bob)
    assert types(stream(uc, alice)) == ["message", "read"]


def test_a_reader_who_turned_receipts_off_sends_none_and_still_gets_its_read_events(uc):
    alice, bob = user(uc, "alice"), user(uc, "bob")
    answer = uc.accounts.update_account(caller=me(bob), user_name=None, handle=None, password=None,
                                        current_password=None, source_ip="127.0.0.1", read_receipts=False)
    assert answer.read_receipts is False
    assert uc.accounts.account(caller=me(bob)).read_receipts is False
    sent = send(uc, alice, bob, "did you read this?")
    mark_read(uc, bob, sent.message_id, with_user=alice)
    assert types(stream(uc, bob)) == ["message", "read"]
    assert types(stream(uc, alice)) == ["message"]
    uc.accounts.update_account(caller=me(bob), user_name=None, handle=None, password=None, current_password=None,
                               source_ip="127.0.0.1", read_receipts=True)
    again = send(uc, alice, bob, "and this?")
    mark_read(uc, bob, again.message_id, with_user=alice)
    assert types(stream(uc, alice)) == ["message", "message", "receipt"]


def test_a_group_read_is_a_read_event_for_the_reader_only(uc):
    alice, bob, carol = user(uc, "alice"), user(uc, "bob"), user(uc, "carol")
    group = group_of(uc, alice, bob, carol)
    sent = send_group(uc, alice, group, "read me")
    before = {u.user_id: newest_seq(uc, u) for u in (alice, carol)}
    mark_read(uc, bob, sent.message_id, group_id=group)
    assert stream(uc, bob)[-1] == {"seq": newest_seq(uc, bob), "type": "read", "with_user_id": None,
                                   "group_id": group, "message_id": sent.message_id}
    assert {u.user_id: newest_seq(uc, u) for u in (alice, carol)} == before
    unread = {c["id"]: c["unread"] for c in conversations(uc, carol).conversations}
    assert unread == {group: 1}
    mark_read(uc, carol, sent.message_id, group_id=group)
    send_group(uc, carol, group, "carol's own is never unread")
    [c] = conversations(uc, carol).conversations
    assert (c["unread"], c["read_up_to"]) == (0, sent.message_id)
    assert [c["unread"] for c in conversations(uc, bob).conversations] == [1]


def test_a_note_to_self_is_marked_read_with_ones_own_id_and_sends_no_receipt(uc):
    alice = user(uc, "alice")
    sent = send(uc, alice, alice, "note")
    mark_read(uc, alice, sent.message_id, with_user=alice)
    assert stream(uc, alice)[1:] == [{"seq": 2, "type": "read", "with_user_id": alice.user_id, "group_id": None,
                                      "message_id": sent.message_id}]


def test_marking_read_a_message_not_in_that_conversation_is_not_found_and_changes_nothing(uc):
    alice, bob, carol = user(uc, "alice"), user(uc, "bob"), user(uc, "carol")
    group = group_of(uc, bob)
    from_alice = send(uc, alice, bob, "from alice")
    to_carol = send(uc, alice, carol, "not bob's")
    before = {u.user_id: newest_seq(uc, u) for u in (alice, bob, carol)}
    with pytest.raises(MessageNotFound):
        mark_read(uc, bob, from_alice.message_id, with_user=carol)  # held, but another conversation
    with pytest.raises(MessageNotFound):
        mark_read(uc, bob, from_alice.message_id, group_id=group)
    with pytest.raises(MessageNotFound):
        mark_read(uc, bob, to_carol.message_id, with_user=alice)  # not in bob's stream
    with pytest.raises(MessageNotFound):
        mark_read(uc, bob, UNKNOWN, with_user=alice)
    with pytest.raises(BadRequest):
        mark_read(uc, bob, from_alice.message_id)  # neither
    with pytest.raises(BadRequest):
        mark_read(uc, bob, from_alice.message_id, with_user=alice, group_id=group)  # both
    assert {u.user_id: newest_seq(uc, u) for u in (alice, bob, carol)} == before


# --------------------------------------------------------------------------- memberships


def test_a_join_and_a_leave_are_member_events_to_the_user_and_every_member(uc):
    alice, bob, carol = user(uc, "alice"), user(uc, "bob"), user(uc, "carol")
    group = uc.membership.create_group(caller=None, group_name="club").group_id
    join(uc, alice, group)
    assert stream(uc, alice) == [member_event(1, group, "club", alice)]
    join(uc, bob, group)
    assert stream(uc, alice, after=1) == [member_event(2, group, "club", bob)]
    assert stream(uc, bob) == [member_event(1, group, "club", bob)]
    join(uc, bob, group)  # idempotent: nothing new
    join(uc, bob, group, False)
    assert stream(uc, alice, after=2) == [member_event(3, group, "club", bob, member=False)]
    assert stream(uc, bob, after=1) == [member_event(2, group, "club", bob, member=False)]
    join(uc, bob, group, False)  # idempotent: nothing new
    join(uc, carol, group, False)  # never a member: nothing
    assert (newest_seq(uc, alice), newest_seq(uc, bob), newest_seq(uc, carol)) == (3, 2, 0)
    with pytest.raises(GroupNotFound):
        join(uc, carol, UNKNOWN)


def test_an_account_deleted_leaves_its_groups_with_a_member_event_to_every_member(uc):
    """Deleting an account takes its memberships; the members' streams must
    say so, or a device that rebuilds memberships from /sync keeps it."""
    alice, bob = user(uc, "alice"), user(uc, "bob")
    group = group_of(uc, alice, bob, name="club")
    assert group_info(uc, alice, group).member_count == 2
    uc.accounts.delete_account(caller=me(bob), password=None, source_ip="127.0.0.1")
    assert [m["user_id"] for m in group_info(uc, alice, group).members] == [alice.user_id]
    members = {}
    for event in stream(uc, alice):
        if event["type"] == "member":
            members[event["user_id"]] = event["member"]
    assert members == {alice.user_id: True, bob.user_id: False}


# --------------------------------------------------------------------------- /read_messages over the stream


def test_read_messages_shows_only_received_messages_with_their_current_text(uc):
    alice, bob, carol = user(uc, "alice"), user(uc, "bob"), user(uc, "carol")
    group = group_of(uc, alice, bob, carol)  # bob: seqs 1-2 are member events
    kept = send(uc, alice, bob, "kept")  # 3
    edited = send_group(uc, carol, group, "before")  # 4
    gone = send(uc, alice, bob, "gone")  # 5
    send(uc, bob, alice, "bob's own")  # 6: not shown to bob
    note = send(uc, bob, bob, "bob's note")  # 7: shown
    edit(uc, carol, edited.message_id, "after")  # 8
    delete(uc, alice, gone.message_id)  # 9
    mark_read(uc, bob, kept.message_id, with_user=alice)  # 10
    page = uc.reading.read(caller=bob.user_id, user_id=bob.user_id, after=0, since=None, limit=100)
    assert [(m["seq"], m["message_id"], m["text"]) for m in page.messages] == [
        (3, kept.message_id, "kept"), (4, edited.message_id, "after"), (7, note.message_id, "bob's note")]
    assert set(page.messages[0]) == {"seq", "message_id", "kind", "sender_id", "group_id", "text", "sent_at",
                                     "attachments"}
    assert (page.next_after, page.has_more) == (10, False)  # past what it does not show
    since = uc.reading.read(caller=bob.user_id, user_id=bob.user_id, after=None, since=DAY0 - timedelta(days=3650),
                            limit=100)
    assert since.messages == page.messages
    assert [m["text"] for m in inbox(uc, alice)] == ["after", "bob's own"]  # not the messages alice sent


def test_read_messages_pages_may_be_empty_with_has_more_and_move_past_every_event(uc):
    alice, bob = user(uc, "alice"), user(uc, "bob")
    group = group_of(uc, alice, bob)  # bob: 1
    send(uc, bob, alice, "own")  # 2
    sent = send(uc, alice, bob, "received")  # 3
    page = uc.reading.read(caller=bob.user_id, user_id=bob.user_id, after=0, since=None, limit=2)
    assert (page.messages, page.next_after, page.has_more) == ([], 2, True)
    page = uc.reading.read(caller=bob.user_id, user_id=bob.user_id, after=2, since=None, limit=2)
    assert ([m["message_id"] for m in page.messages], page.next_after, page.has_more) == ([sent.message_id], 3, False)
    join(uc, alice, group, False)  # 4: a member event, not shown
    page = uc.reading.read(caller=bob.user_id, user_id=bob.user_id, after=3, since=None, limit=10)
    assert (page.messages, page.next_after, page.has_more) == ([], 4, False)
    with pytest.raises(CursorAhead) as err:
        uc.reading.read(caller=bob.user_id, user_id=bob.user_id, after=5, since=None, limit=10)
    assert err.value.newest_seq == 4


# --------------------------------------------------------------------------- /conversations


def test_conversations_come_most_recent_first_with_names_unread_counts_and_read_markers(uc):
    alice, bob, carol = user(uc, "alice"), user(uc, "bob"), user(uc, "carol")
    group = uc.membership.create_group(caller=None, group_name="quiet group").group_id
    join(uc, alice, group)  # alice 1
    b1 = send(uc, bob, alice, "b1")  # 2
    b2 = send(uc, bob, alice, "b2")  # 3
    c1 = send(uc, alice, carol, "c1")  # 4
    note = send(uc, alice, alice, "note")  # 5
    b3 = send(uc, bob, alice, "b3")  # 6
    answer = conversations(uc, alice)
    assert answer.next_before is None
    assert [(c["kind"], c["id"], c["name"], c["unread"], c["read_up_to"], c["read_up_to_seq"])
            for c in answer.conversations] == [
        ("direct", bob.user_id, "bob", 3, None, None),
        ("direct", alice.user_id, "alice", 0, None, None),  # a note to self: its id is one's own
        ("direct", carol.user_id, "carol", 0, None, None),  # only alice's own message
        ("group", group, "quiet group", 0, None, None),  # no messages: placed at the join
    ]
    last = [c["last_message"] for c in answer.conversations]
    assert last[:3] == [message_event(6, b3, bob, recipient=alice, text="b3"),
                        message_event(5, note, alice, recipient=alice, text="note"),
                        message_event(4, c1, alice, recipient=carol, text="c1")]
    assert last[3] is None
    mark_read(uc, alice, b2.message_id, with_user=bob)
    [first] = conversations(uc, alice, limit=1).conversations
    assert (first["id"], first["unread"], first["read_up_to"], first["read_up_to_seq"]) == (
        bob.user_id, 1, b2.message_id, 3)
    delete(uc, bob, b3.message_id)  # a deleted message is not unread; it keeps its place
    [first] = conversations(uc, alice, limit=1).conversations
    assert (first["id"], first["unread"]) == (bob.user_id, 0)
    assert (first["last_message"]["text"], first["last_message"]["deleted"]) == (None, True)
    assert b1.message_id != b2.message_id
    # bob's side: one conversation, with alice, whose last message is his deleted one
    [theirs] = conversations(uc, bob).conversations
    assert (theirs["id"], theirs["name"], theirs["unread"]) == (alice.user_id, "alice", 0)


def test_conversations_page_with_before_and_next_before(uc):
    alice = user(uc, "alice")
    others = [user(uc, f"friend{i}") for i in range(5)]
    for other in others:
        send(uc, other, alice, f"from {other.user_name}")  # alice's seqs 1..5
    seen, before = [], None
    while True:
        page = conversations(uc, alice, limit=2, before=before)
        seen += [c["id"] for c in page.conversations]
        if page.next_before is None:
            break
        assert page.next_before == page.conversations[-1]["last_message"]["seq"]
        before = page.next_before
    assert seen == [o.user_id for o in reversed(others)]
    assert conversations(uc, alice, limit=2, before=1).conversations == []
    assert conversations(uc, alice, limit=5).next_before is None


def test_a_deleted_account_has_no_name_and_a_group_one_left_stays_while_its_messages_are_held(uc):
    alice, bob, carol = user(uc, "alice"), user(uc, "bob"), user(uc, "carol")
    group = group_of(uc, alice, bob, name="old group")
    send(uc, bob, alice, "from bob")
    send_group(uc, bob, group, "in the group")
    join(uc, alice, group, False)
    uc.accounts.delete_account(caller=me(bob), password=None, source_ip="127.0.0.1")
    empty = uc.membership.create_group(caller=None, group_name="left empty").group_id
    join(uc, alice, empty)
    join(uc, alice, empty, False)  # left a group without messages: not listed
    send(uc, carol, alice, "hi")
    listed = [(c["kind"], c["id"], c["name"]) for c in conversations(uc, alice).conversations]
    assert listed == [("direct", carol.user_id, "carol"), ("group", group, "old group"),
                      ("direct", bob.user_id, None)]


# --------------------------------------------------------------------------- /history


def test_history_is_one_conversation_both_directions_newest_first_paged(uc):
    alice, bob, carol = user(uc, "alice"), user(uc, "bob"), user(uc, "carol")
    sent = []
    for i in range(5):
        sent.append(send(uc, alice, bob, f"a{i}") if i % 2 == 0 else send(uc, bob, alice, f"b{i}"))
        send(uc, carol, alice, f"noise {i}")  # another conversation in between
    full = history(uc, alice, with_user=bob)
    assert [m["message_id"] for m in full.messages] == [s.message_id for s in reversed(sent)]
    assert all(m["type"] == "message" for m in full.messages) and full.next_before_seq is None
    assert [m["text"] for m in full.messages] == ["a4", "b3", "a2", "b1", "a0"]
    pages, before = [], None
    while True:
        page = history(uc, alice, with_user=bob, before_seq=before, limit=2)
        pages.append([m["text"] for m in page.messages])
        if page.next_before_seq is None:
            break
        assert page.next_before_seq == page.messages[-1]["seq"]
        before = page.next_before_seq
    assert pages == [["a4", "b3"], ["a2", "b1"], ["a0"]]
    # bob's side: the same messages with bob's seqs
    assert [m["text"] for m in history(uc, bob, with_user=alice).messages] == ["a4", "b3", "a2", "b1", "a0"]
    assert [m["seq"] for m in history(uc, bob, with_user=alice).messages] == [5, 4, 3, 2, 1]
    assert history(uc, bob, with_user=carol).messages == []  # nothing in bob's stream
    assert history(uc, bob, with_user=alice, before_seq=1).messages == []


def test_history_of_a_group_and_of_notes_to_self_shows_the_current_state(uc):
    alice, bob = user(uc, "alice"), user(uc, "bob")
    group = group_of(uc, alice, bob)
    g1 = send_group(uc, alice, group, "g1")
    g2 = send_group(uc, bob, group, "g2")
    edit(uc, bob, g2.message_id, "g2 edited")
    delete(uc, alice, g1.message_id)
    note = send(uc, alice, alice, "note")
    assert [(m["message_id"], m["text"], m["deleted"]) for m in history(uc, alice, group_id=group).messages] == [
        (g2.message_id, "g2 edited", False), (g1.message_id, None, True)]
    assert [m["message_id"] for m in history(uc, alice, with_user=alice).messages] == [note.message_id]
    with pytest.raises(BadRequest):
        history(uc, alice)
    with pytest.raises(BadRequest):
        history(uc, alice, with_user=bob, group_id=group)


# --------------------------------------------------------------------------- /group_info


def test_group_info_lists_members_in_user_id_order_paged_for_members_only(uc):
    people = [user(uc, f"member{i}") for i in range(4)]
    outsider = user(uc, "outsider")
    group = group_of(uc, *people, name="four")
    info = group_info(uc, people[0], group)
    expected = sorted((p.user_id, p.user_name) for p in people)
    assert (info.group_id, info.group_name, info.member_count, info.next_after_user_id) == (group, "four", 4, None)
    assert [(m["user_id"], m["user_name"], m["handle"]) for m in info.members] == [(i, n, None) for i, n in expected]
    first = group_info(uc, people[1], group, limit=3)
    assert [m["user_id"] for m in first.members] == [i for i, _ in expected[:3]]
    assert first.next_after_user_id == expected[2][0]
    rest = group_info(uc, people[1], group, after_user_id=first.next_after_user_id, limit=3)
    assert ([m["user_id"] for m in rest.members], rest.next_after_user_id) == ([expected[3][0]], None)
    with pytest.raises(NotAMember):
        group_info(uc, outsider, group)
    join(uc, people[3], group, False)
    with pytest.raises(NotAMember):
        group_info(uc, people[3], group)  # a former member is no member
    assert group_info(uc, people[0], group).member_count == 3
    with pytest.raises(GroupNotFound):
        group_info(uc, people[0], UNKNOWN)
    with pytest.raises(Forbidden):
        uc.browsing.group_info(caller=outsider.user_id, user_id=people[0].user_id, group_id=group,
                               after_user_id=None, limit=10)


# --------------------------------------------------------------------------- retention


def _every_event_type_at_day0(deps):
    """alice, bob and carol in a group, with every event type at DAY0; the
    users and the ids of the old messages."""
    early = at(deps, DAY0)
    alice, bob, carol = user(early, "alice"), user(early, "bob"), user(early, "carol")
    group = group_of(early, alice, bob, carol)  # member events
    direct = send(early, alice, bob, "old direct")
    grouped = send_group(early, bob, group, "old group")
    edit(early, alice, direct.message_id, "old direct, edited")
    mark_read(early, bob, direct.message_id, with_user=alice)  # read + receipt
    mark_read(early, carol, grouped.message_id, group_id=group)
    delete(early, bob, grouped.message_id)
    join(early, carol, group, False)
    return alice, bob, carol, group, [direct.message_id, grouped.message_id]


@pytest.mark.parametrize("batch", [1000, 1])
def test_retention_purges_every_event_type_older_than_the_horizon(empty_deps, batch):
    alice, bob, carol, group, old = _every_event_type_at_day0(empty_deps)
    later = at(empty_deps, DAY0 + timedelta(days=10))
    recent = send(later, alice, bob, "recent")
    before = {u.user_id: newest_seq(later, u) for u in (alice, bob, carol)}
    purged = at(empty_deps, DAY0 + timedelta(days=12), retention_days=5).retention.purge(batch=batch)
    assert purged.finished, purged
    assert count(empty_deps, "SELECT COUNT(*) FROM events WHERE created_at < %s",
                 ("2026-03-08 00:00:00.000000",)) == 0
    marks = ", ".join(["%s"] * len(old))
    assert count(empty_deps, f"SELECT COUNT(*) FROM events WHERE message_id IN ({marks})", tuple(old)) == 0
    assert count(empty_deps, f"SELECT COUNT(*) FROM messages WHERE id IN ({marks})", tuple(old)) == 0
    assert count(empty_deps, f"SELECT COUNT(*) FROM inbox WHERE message_id IN ({marks})", tuple(old)) == 0
    for reader in (alice, bob):
        events = stream(later, reader)  # what is left reads, seqs as they were
        assert [(e["type"], e.get("text")) for e in events] == [("message", "recent")], reader.user_name
        assert events[0]["message_id"] == recent.message_id
        assert events[0]["seq"] == before[reader.user_id]
    assert stream(later, carol) == []
    assert count(empty_deps, "SELECT COUNT(*) FROM events") == 0
    again = at(empty_deps, DAY0 + timedelta(days=12), retention_days=5).retention.purge(batch=batch)
    assert (again.inbox_rows, again.messages, again.finished) == (0, 0, True)
