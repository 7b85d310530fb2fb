"""The client's store applying each type of stream event (no HTTP): what is
news, what it stores, unread counts and read markers, receipts, memberships,
the outbox's own sends coming back, gaps, and a store of an older client
read again from the start."""
from __future__ import annotations

import sqlite3
import stat
from pathlib import Path
from typing import Any, Dict, Optional

import pytest

from messaging_client.messenger import frame_event
from messaging_client.store import STREAM_VERSION, Store

ME, BOB, GROUP = "11111111-0000-4000-8000-000000000000", "22222222-0000-4000-8000-000000000000", \
    "33333333-0000-4000-8000-000000000000"
AT = "2024-07-01T09:10:00.123456Z"


def message(seq: int, message_id: str, *, sender: str = BOB, to: Optional[str] = ME, group: Optional[str] = None,
            text: Optional[str] = "hi", edited_at: Optional[str] = None, deleted: bool = False) -> Dict[str, Any]:
    return {"seq": seq, "type": "message", "message_id": message_id, "kind": "group" if group else "direct",
            "sender_id": sender, "recipient_id": None if group else to, "group_id": group, "text": text,
            "sent_at": AT, "edited_at": edited_at, "deleted": deleted}


def edit(seq: int, message_id: str, text: Optional[str], *, sender: str = BOB, to: str = ME) -> Dict[str, Any]:
    return {"seq": seq, "type": "edit", "message_id": message_id, "kind": "direct", "sender_id": sender,
            "recipient_id": to, "group_id": None, "text": text, "edited_at": "2024-07-01T09:11:00.000000Z"}


def delete(seq: int, message_id: str, *, sender: str = BOB, to: str = ME) -> Dict[str, Any]:
    return {"seq": seq, "type": "delete", "message_id": message_id, "kind": "direct", "sender_id": sender,
            "recipient_id": to, "group_id": None}


@pytest.fixture
def store(tmp_path: Path):
    opened = Store(tmp_path / "me.sqlite3", ME)
    yield opened
    opened.close()


def types(news) -> list:
    return [e["type"] for e in news]


def test_messages_of_both_sides_go_to_the_other_persons_conversation_and_only_others_count_unread(store):
    news = store.apply([message(1, "m1"), message(2, "m2", sender=ME, to=BOB), message(3, "m3", sender=ME, to=ME)])
    assert types(news) == ["message"] * 3 and store.cursor == 3
    assert [(m["message_id"], m["outgoing"]) for m in store.history(f"direct:{BOB}")] == [("m1", 0), ("m2", 1)]
    assert [m["message_id"] for m in store.history(f"direct:{ME}")] == ["m3"]  # a note to self: one row
    assert {c.id: c.unread for c in store.conversations()} == {f"direct:{BOB}": 1, f"direct:{ME}": 0}
    assert store.apply([message(3, "m3", sender=ME, to=ME)]) == [] and store.cursor == 3  # had it


def test_an_event_past_a_gap_waits_for_the_cursor_read(store):
    assert store.apply([message(2, "m2")]) == [] and store.cursor == 0
    assert types(store.apply([message(2, "m2"), message(1, "m1")])) == ["message", "message"]
    assert store.cursor == 2


def test_edits_and_deletions_change_the_message_and_a_repeated_deletion_is_no_news(store):
    store.apply([message(1, "m1", text="helo"), message(2, "m2", text="oops")])
    assert types(store.apply([edit(3, "m1", "hello")])) == ["edit"]
    assert types(store.apply([delete(4, "m2")])) == ["delete"]
    assert store.apply([delete(5, "m2")]) == [] and store.cursor == 5
    m1, m2 = store.history(f"direct:{BOB}")
    assert (m1["text"], m1["edited_at"] is not None, m1["deleted"]) == ("hello", True, False)
    assert (m2["text"], m2["deleted"]) == (None, True)
    [conversation] = store.conversations()
    assert (conversation.unread, conversation.last_deleted, conversation.last_text) == (1, True, None)
    # An edit read after its message's deletion carries no text: deleted too.
    store.apply([message(6, "m3"), edit(7, "m3", None)])
    assert store.message("m3")["deleted"] is True


def test_a_message_read_after_its_edit_or_deletion_shows_its_current_state(store):
    store.apply([message(1, "m1", text="new", edited_at=AT), message(2, "m2", text=None, deleted=True)])
    assert [(m["text"], m["deleted"]) for m in store.history(f"direct:{BOB}")] == [("new", False), (None, True)]
    assert store.conversations()[0].unread == 1


def test_read_events_move_the_marker_forward_only_and_new_messages_count_again(store):
    store.apply([message(1, "m1"), message(2, "m2")])
    assert store.unread_up_to(f"direct:{BOB}") == {"message_id": "m2", "seq": 2}
    read = {"type": "read", "with_user_id": BOB, "group_id": None}
    assert types(store.apply([{**read, "seq": 3, "message_id": "m2"}])) == ["read"]
    assert store.conversation(f"direct:{BOB}").unread == 0
    assert store.conversation(f"direct:{BOB}").read_up_to == "m2"
    assert store.unread_up_to(f"direct:{BOB}") is None
    store.apply([{**read, "seq": 4, "message_id": "m1"}])  # never back
    assert store.conversation(f"direct:{BOB}").read_up_to == "m2"
    store.apply([message(5, "m5")])
    assert store.conversation(f"direct:{BOB}").unread == 1
    store.mark_read(f"direct:{BOB}", 5, "m5")
    assert store.conversation(f"direct:{BOB}").unread == 0


def test_a_receipt_is_kept_in_its_direct_conversation(store):
    store.apply([message(1, "m1", sender=ME, to=BOB), message(2, "m2", sender=ME, to=BOB)])
    receipt = {"type": "receipt", "with_user_id": BOB, "user_id": BOB}
    assert types(store.apply([{**receipt, "seq": 3, "message_id": "m2"}])) == ["receipt"]
    store.apply([{**receipt, "seq": 4, "message_id": "m1"}])  # an older one does not move it back
    assert store.conversation(f"direct:{BOB}").their_read_up_to == "m2"


def test_member_events_open_a_group_with_its_name(store):
    joined = {"seq": 1, "type": "member", "group_id": GROUP, "group_name": "team", "user_id": ME, "member": True}
    other = {"seq": 2, "type": "member", "group_id": GROUP, "group_name": "team", "user_id": BOB, "member": True}
    assert types(store.apply([joined, other])) == ["member", "member"]
    [group] = store.conversations()
    assert (group.id, group.name, group.unread) == (f"group:{GROUP}", "team", 0)
    store.apply([message(3, "g1", group=GROUP)])
    assert store.conversation(f"group:{GROUP}").unread == 1


def test_a_send_of_this_device_coming_back_is_no_news_before_or_after_its_answer(store):
    key = store.queue("direct", BOB, "mine")
    store.sent(key, "m1", AT)
    assert store.apply([message(1, "m1", sender=ME, to=BOB, text="mine")]) == []
    assert [(m["message_id"], m["seq"]) for m in store.history(f"direct:{BOB}")] == [("m1", 1)]
    # Its event before its answer: matched to the pending send of the same text to the same conversation.
    key = store.queue("direct", BOB, "racing")
    assert store.apply([message(2, "m2", sender=ME, to=BOB, text="racing")]) == []
    store.sent(key, "m2", AT)
    assert [m["message_id"] for m in store.history(f"direct:{BOB}")] == ["m1", "m2"]
    # The same from another device is news.
    assert types(store.apply([message(3, "m3", sender=ME, to=BOB, text="from the laptop")])) == ["message"]


def test_an_unknown_event_type_moves_the_cursor_on(store):
    assert store.apply([{"seq": 1, "type": "something-new"}]) == [] and store.cursor == 1


def test_a_store_of_an_older_client_reads_the_stream_again_from_the_start(tmp_path):
    path = tmp_path / "old.sqlite3"
    old = sqlite3.connect(path)
    old.executescript("""
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE messages (message_id TEXT PRIMARY KEY, seq INTEGER UNIQUE, conversation TEXT NOT NULL,
            kind TEXT NOT NULL, sender_id TEXT NOT NULL, group_id TEXT, text TEXT NOT NULL, sent_at TEXT NOT NULL,
            outgoing INTEGER NOT NULL);
        CREATE TABLE conversations (id TEXT PRIMARY KEY, kind TEXT NOT NULL, target TEXT NOT NULL,
            read_seq INTEGER NOT NULL DEFAULT 0);
    """)
    old.execute("INSERT INTO meta VALUES ('user_id', ?), ('cursor', '7')", (ME,))
    old.execute("INSERT INTO messages VALUES ('m4', 4, ?, 'direct', ?, NULL, 'old', ?, 0)", (f"direct:{BOB}", BOB, AT))
    old.commit()
    old.close()
    store = Store(path, ME)
    try:
        assert store.cursor == 0  # /read_messages' cursor skipped the user's own messages and the other events
        assert store._db.execute("PRAGMA user_version").fetchone()[0] == STREAM_VERSION
        assert [m["text"] for m in store.history(f"direct:{BOB}")] == ["old"]
        store.apply([message(i, f"m{i}", sender=ME if i != 4 else BOB, to=BOB, text=f"t{i}") for i in range(1, 6)])
        assert [m["message_id"] for m in store.history(f"direct:{BOB}")] == [f"m{i}" for i in range(1, 6)]
    finally:
        store.close()
    reopened = Store(path, ME)  # upgraded once: the cursor stays
    try:
        assert reopened.cursor == 5
    finally:
        reopened.close()


def test_the_store_file_is_its_owners_only(store):
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600


def test_a_frames_event_is_read_from_either_frame_type():
    event = message(1, "m1")
    assert frame_event({"type": "event", "event": event}) == event
    assert frame_event({"type": "message", "message": {"seq": 1}, "event": event}) == event
    assert frame_event({"type": "pong"}) is None and frame_event({"type": "message", "message": {}}) is None


def test_a_message_keeps_its_files_until_it_is_deleted(store):
    photo = {"attachment_id": "a1b2c3d4-0000-4000-8000-000000000000", "content_type": "image/png", "size": 10,
             "file_name": "p.png"}
    news = store.apply([{**message(1, "m1", text=""), "attachments": [photo]}, message(2, "m2")])
    assert [e["attachments"] for e in news[:1]] == [[photo]]
    assert [m["attachments"] for m in store.history(f"direct:{BOB}")] == [[photo], []]
    assert store.attachments_starting("a1b2") == [{**photo, "message_id": "m1"}]
    assert store.conversation(f"direct:{BOB}").last_files == 0  # m2 is the last
    store.apply([delete(3, "m1")])
    assert store.message("m1")["attachments"] == [] and store.attachments_starting("a1b2") == []


def test_a_queued_send_keeps_its_files_by_path_then_by_attachment_id(store, tmp_path):
    from messaging_client.store import OutboxFile

    key = store.queue("direct", BOB, "", [OutboxFile("rel/p.png", "image/png", "p.png")])
    [pending] = store.pending()
    assert pending.files == (OutboxFile(str(Path("rel/p.png").absolute()), "image/png", "p.png"),)
    store.uploaded(key, 0, "att-1", 10)
    store.uploaded(key, 0, "att-2", 10)  # another process's upload, recorded second: the first one stays
    assert [f.attachment_id for f in store.outbox_files(key)] == ["att-1"]
    store.forget_uploads(key)
    assert [f.attachment_id for f in store.outbox_files(key)] == [None]
    store.uploaded(key, 0, "att-3", 10)
    store.sent(key, "m1", AT)
    assert store.message("m1")["attachments"] == [{"attachment_id": "att-3", "content_type": "image/png", "size": 10,
                                                   "file_name": "p.png"}]
