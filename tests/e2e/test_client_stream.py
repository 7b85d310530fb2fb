"""The client library and command line on the stream (/sync), over real HTTP
against a development server of the test's own (SQLite, and MariaDB +
Redis): one user on two devices (two stores, the second signed in with a
link code) sees on each what it did on the other: its own sent messages,
edits and deletions, what it read (unread counts follow), and the receipts
others send. Live over the WebSocket too. And the command line's `edit`,
`delete` and `conversations`, run as a person would."""
from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest

from messaging_client import Client, Messenger, Store
from messaging_client.api import Forbidden, MessageDeleted, MessageNotFound
from tests.e2e.test_client import server, user  # noqa: F401,F811 - the same servers and users as the client tests
from tests.support.devserver import PROJECT_ROOT
from tests.support.servers import wait_until

DEADLINE_SECONDS = 15


def second_device(first: Messenger, tmp_path: Path, name: str) -> Messenger:
    """The same user signed in on another device (a link code shown on the first), with a store of its own."""
    code = first.client.link_code().code
    client = Client(first.client.api, retries=2)
    signed = client.link(code, device_name=name)
    assert signed.user_id == first.me
    client.token = signed.token
    return Messenger(client, Store(tmp_path / f"{name}-{first.me[:8]}.sqlite3", first.me), first.me)


def unread(m: Messenger) -> Dict[str, int]:
    return {c.id: c.unread for c in m.store.conversations()}


def texts(m: Messenger, conversation: str) -> List[Optional[str]]:
    return [item["text"] for item in m.store.history(conversation)]


# --------------------------------------------------------------------------- the library, two devices


def test_a_message_sent_on_one_device_is_in_the_others_store_as_the_users_own_and_shown_once(server, tmp_path):
    desk, bob = user(server.url, "alice", tmp_path), user(server.url, "bob", tmp_path)
    laptop = second_device(desk, tmp_path, "laptop")
    key = desk.send(bob.me, "from the desk")
    message_id = desk.store.outbox_state(key)["message_id"]

    news = laptop.catch_up()
    assert [(m["message_id"], m["sender_id"], m["text"]) for m in news] == [(message_id, desk.me, "from the desk")]
    [item] = laptop.store.history(f"direct:{bob.me}")
    assert (item["message_id"], item["outgoing"], item["text"]) == (message_id, 1, "from the desk")
    assert unread(laptop) == {f"direct:{bob.me}": 0}  # one's own messages are never unread

    # The desk's own event comes back through its stream: matched by message_id, not news, not stored twice.
    assert desk.sync() == []
    [mine] = desk.store.history(f"direct:{bob.me}")
    assert (mine["message_id"], mine["seq"]) == (message_id, news[0]["seq"])

    # A group message from the laptop: the desk has it as its own in the group's conversation.
    group_id = bob.client.create_group("team")
    for m in (desk, bob):
        assert m.client.update_group(m.me, group_id)
    laptop.send(group_id, "to the team", group=True)
    assert [(m["text"], m["group_id"]) for m in desk.catch_up()] == [("to the team", group_id)]
    assert [(m["text"], m["outgoing"]) for m in desk.store.history(f"group:{group_id}")] == [("to the team", 1)]
    assert [m["text"] for m in bob.catch_up()] == ["from the desk", "to the team"]
    # Notes to self: one message, one row, on both devices.
    desk.send(desk.me, "note")
    assert texts(laptop, f"direct:{desk.me}") == [] and [m["text"] for m in laptop.catch_up()] == ["note"]
    assert texts(laptop, f"direct:{desk.me}") == ["note"]
    assert desk.sync() == [] and texts(desk, f"direct:{desk.me}") == ["note"]


def test_an_edit_and_a_deletion_on_one_device_are_applied_on_the_other_and_at_the_recipient(server, tmp_path):
    desk, bob = user(server.url, "alice", tmp_path), user(server.url, "bob", tmp_path)
    laptop = second_device(desk, tmp_path, "laptop")
    kept = desk.store.outbox_state(desk.send(bob.me, "typo hree"))["message_id"]
    gone = desk.store.outbox_state(desk.send(bob.me, "regret"))["message_id"]
    for m in (desk, laptop, bob):
        m.sync()

    edited = desk.edit(kept, "typo here")
    assert edited.message_id == kept
    assert [(e["type"], e["text"]) for e in laptop.sync()] == [("edit", "typo here")]
    assert [(e["type"], e["text"]) for e in bob.sync()] == [("edit", "typo here")]
    for m in (desk, laptop, bob):
        first = m.store.history(f"direct:{bob.me if m.me == desk.me else desk.me}")[0]
        assert (first["text"], first["edited_at"], first["deleted"]) == ("typo here", edited.edited_at, False), m.me
    assert desk.client.edit_message(kept, "typo here").message_id == kept  # a retry sets the same text
    assert [e["type"] for e in desk.sync()] == ["edit", "edit"]

    laptop.delete(gone)
    assert [(e["type"], e["message_id"]) for e in desk.sync()][-1] == ("delete", gone)
    assert [e["type"] for e in bob.sync()][-1] == "delete"
    for m, conversation in ((desk, f"direct:{bob.me}"), (laptop, f"direct:{bob.me}"), (bob, f"direct:{desk.me}")):
        assert texts(m, conversation) == ["typo here", None], m.me
        assert m.store.history(conversation)[1]["deleted"] is True
    assert unread(bob) == {f"direct:{desk.me}": 1}  # a deleted message is not unread
    [conversation] = bob.store.conversations()
    assert (conversation.last_deleted, conversation.last_text) == (True, None)
    assert desk.client.delete_message(gone) is True and bob.sync() == []  # idempotent: no new event

    with pytest.raises(MessageDeleted):
        desk.client.edit_message(gone, "back")
    with pytest.raises(Forbidden):  # only the sender
        bob.client.edit_message(kept, "not yours")
    with pytest.raises(Forbidden):
        bob.client.delete_message(kept)
    # A device that starts from scratch rebuilds the same from the stream.
    fresh = Messenger(desk.client, Store(tmp_path / "fresh.sqlite3", desk.me), desk.me)
    fresh.sync()
    assert texts(fresh, f"direct:{bob.me}") == ["typo here", None]


def test_reading_on_one_device_updates_unread_on_the_other_and_a_new_message_counts_again(server, tmp_path):
    desk, bob = user(server.url, "alice", tmp_path), user(server.url, "bob", tmp_path)
    laptop = second_device(desk, tmp_path, "laptop")
    bob.send(desk.me, "one")
    bob.send(desk.me, "two")
    conversation = f"direct:{bob.me}"
    for m in (desk, laptop):
        m.sync()
        assert unread(m) == {conversation: 2}

    marked = laptop.mark_read(conversation)
    assert marked == bob.store.history(f"direct:{desk.me}")[-1]["message_id"]  # the newest from bob
    assert unread(laptop) == {conversation: 0}
    assert laptop.mark_read(conversation) is None  # nothing new: no call, no event
    assert [e["type"] for e in laptop.sync()] == ["read"]  # its own read comes back to it too, once
    reads = [e for e in desk.sync() if e["type"] == "read"]
    assert [(e["with_user_id"], e["message_id"]) for e in reads] == [(bob.me, marked)]
    assert unread(desk) == {conversation: 0}
    assert desk.store.conversation(conversation).read_up_to == marked

    bob.send(desk.me, "three")
    desk.sync()
    assert unread(desk) == {conversation: 1}  # a new message from another counts
    # A marker never moves back: an older message changes nothing, and no event says otherwise.
    first = bob.store.history(f"direct:{desk.me}")[0]["message_id"]
    assert desk.client.mark_read(first, with_user_id=bob.me) == first
    assert [e["type"] for e in laptop.sync()] == ["message"]  # "three", and no read event
    assert unread(laptop) == {conversation: 1}

    # Groups: the same read state, without receipts.
    group_id = bob.client.create_group("g")
    for m in (desk, bob):
        assert m.client.update_group(m.me, group_id)
    bob.sync()  # the receipt of the direct conversation (above)
    bob.send(group_id, "to the group", group=True)
    laptop.sync()
    assert unread(laptop)[f"group:{group_id}"] == 1
    assert desk.sync() and desk.mark_read(f"group:{group_id}") is not None
    assert [e["type"] for e in laptop.sync()] == ["read"] and unread(laptop)[f"group:{group_id}"] == 0
    assert not [e for e in bob.sync() if e["type"] == "receipt"]
    with pytest.raises(MessageNotFound):  # a message of another conversation
        desk.client.mark_read(first, group_id=group_id)


def test_a_receipt_reaches_the_senders_devices_unless_the_reader_turned_receipts_off(server, tmp_path):
    desk, bob = user(server.url, "alice", tmp_path), user(server.url, "bob", tmp_path)
    laptop = second_device(desk, tmp_path, "laptop")
    first = desk.store.outbox_state(desk.send(bob.me, "did you read this?"))["message_id"]
    bob.sync()
    assert bob.client.account().read_receipts is True
    assert bob.mark_read(f"direct:{desk.me}") == first
    for m in (desk, laptop):
        receipts = [e for e in m.sync() if e["type"] == "receipt"]
        assert [(e["with_user_id"], e["message_id"]) for e in receipts] == [(bob.me, first)]
        assert m.store.conversation(f"direct:{bob.me}").their_read_up_to == first

    assert bob.client.update_account(read_receipts=False).user_id == bob.me
    assert bob.client.account().read_receipts is False
    second = desk.store.outbox_state(desk.send(bob.me, "and this?"))["message_id"]
    bob.sync()
    assert bob.mark_read(f"direct:{desk.me}") == second
    assert [e["type"] for e in desk.sync()] == []  # its own message came back (not news); no receipt
    assert desk.store.conversation(f"direct:{bob.me}").their_read_up_to == first
    assert [e["type"] for e in bob.sync()] == ["read"]  # bob's own devices still see what bob read


def test_the_sync_loop_delivers_every_event_live_over_the_websocket(server, tmp_path):
    desk, bob = user(server.url, "alice", tmp_path), user(server.url, "bob", tmp_path)
    laptop = second_device(desk, tmp_path, "laptop")
    if laptop.client.connect_ticket(laptop.me).url is None:
        pytest.skip("this server offers no WebSocket")
    events: List[Dict[str, Any]] = []
    messages: List[Dict[str, Any]] = []
    thread = threading.Thread(target=laptop.run, kwargs={"on_message": messages.append, "on_event": events.append},
                              daemon=True)
    thread.start()
    try:
        sent = desk.store.outbox_state(desk.send(bob.me, "live"))["message_id"]
        wait_until(lambda: [e["type"] for e in events] == ["message"], DEADLINE_SECONDS, f"no message: {events}")
        desk.edit(sent, "live, edited")
        bob.send(desk.me, "a reply")
        wait_until(lambda: len(events) == 3, DEADLINE_SECONDS, f"no edit and reply: {events}")
        desk.sync()
        desk.mark_read(f"direct:{bob.me}")
        bob.sync()
        bob.mark_read(f"direct:{desk.me}")
        wait_until(lambda: len(events) == 5, DEADLINE_SECONDS, f"no read and receipt: {events}")
    finally:
        laptop.stop()
        thread.join(30)
    assert [e["type"] for e in events] == ["message", "edit", "message", "read", "receipt"]
    assert [e["seq"] for e in events] == list(range(1, 6)) and laptop.store.cursor == 5
    assert [m["text"] for m in messages] == ["live", "a reply"]
    assert texts(laptop, f"direct:{bob.me}") == ["live, edited", "a reply"]
    assert unread(laptop) == {f"direct:{bob.me}": 0}


def test_the_store_file_is_its_owners_only(server, tmp_path):
    alice = user(server.url, "alice", tmp_path)
    alice.sync()
    assert stat.S_IMODE(alice.store.path.stat().st_mode) == 0o600


# --------------------------------------------------------------------------- the command line


def cli(home: Path, *args: str, api: str, stdin: Optional[str] = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "messaging_client", "--api", api, *args], cwd=PROJECT_ROOT,
                          env={**os.environ, "MESSAGING_HOME": str(home)}, capture_output=True, text=True, timeout=60,
                          input=stdin or "", start_new_session=True)


def ok(out: subprocess.CompletedProcess) -> List[str]:
    assert out.returncode == 0 and out.stderr == "", out
    return out.stdout.splitlines()


def one_line_error(out: subprocess.CompletedProcess) -> str:
    assert out.returncode == 1 and out.stdout == "" and out.stderr.count("\n") == 1, out
    return out.stderr


def after_time(line: str) -> str:
    """A history line without its `[time] `."""
    return line.split("] ", 1)[1]


def test_the_command_line_edits_deletes_and_lists_conversations_across_devices(server, tmp_path):
    home, api = tmp_path / "home", server.url
    shir = ok(cli(home, "--profile", "shir", "register", "shir", api=api))[0].split("user id ")[1].split()[0]
    dan = ok(cli(home, "--profile", "dan", "register", "dan", api=api))[0].split("user id ")[1].split()[0]
    code = ok(cli(home, "--profile", "shir", "link-code", api=api))[0].split()[2]
    ok(cli(home, "--profile", "laptop", "link", code, api=api))

    [sent] = ok(cli(home, "--profile", "shir", "send", dan, "see you at 5", api=api))
    first = sent.removeprefix("sent ")
    [sent] = ok(cli(home, "--profile", "shir", "send", dan, "oops", api=api))
    second = sent.removeprefix("sent ")
    assert ok(cli(home, "--profile", "laptop", "inbox", api=api)) == [f"dan (user {dan})  0 unread  last: oops"]

    assert ok(cli(home, "--profile", "shir", "edit", first, "see you at 6", api=api)) == [f"edited {first}"]
    history = ok(cli(home, "--profile", "dan", "history", shir, api=api))
    assert [after_time(line) for line in history] == ["shir: see you at 6 (edited)", "shir: oops"]
    # The laptop, which sent nothing, deletes with the start of the id `history --ids` shows.
    ids = ok(cli(home, "--profile", "laptop", "history", dan, "--ids", api=api))
    assert [line.split(" [")[0] for line in ids] == [first[:8], second[:8]]
    assert [after_time(line) for line in ids] == ["you: see you at 6 (edited)", "you: oops"]
    assert ok(cli(home, "--profile", "laptop", "delete", second[:8], api=api)) == [f"deleted {second}"]
    assert [after_time(line) for line in ok(cli(home, "--profile", "shir", "history", dan, api=api))] == [
        "you: see you at 6 (edited)", "you: [deleted]"]

    # dan read both (his history above marked them read): the server's list says so, and shir's too.
    assert ok(cli(home, "--profile", "dan", "conversations", api=api)) == [
        f"shir (user {shir})  0 unread  last: [deleted]"]
    [sent] = ok(cli(home, "--profile", "shir", "send", dan, "are you there?", api=api))
    assert ok(cli(home, "--profile", "dan", "conversations", api=api)) == [
        f"shir (user {shir})  1 unread  last: are you there?"]
    assert ok(cli(home, "--profile", "shir", "conversations", api=api)) == [
        f"dan (user {dan})  0 unread  last: are you there?"]
    group = ok(cli(home, "--profile", "dan", "group", "create", "bambis", api=api))[0].split("group id ")[1].split()[0]
    ok(cli(home, "--profile", "dan", "group", "send", group, "hello_group", api=api))
    assert ok(cli(home, "--profile", "dan", "conversations", api=api)) == [
        f"group bambis ({group})  0 unread  last: hello_group", f"shir (user {shir})  1 unread  last: are you there?"]
    # The inbox (this device's store) agrees, with the edits and deletions.
    assert sorted(ok(cli(home, "--profile", "dan", "inbox", api=api))) == sorted([
        f"group {group}  0 unread  last: hello_group", f"shir (user {shir})  1 unread  last: are you there?"])

    # Refusals: one line each, nothing done.
    assert one_line_error(cli(home, "--profile", "dan", "edit", first, "mine now", api=api)) == (
        "error: only the sender can edit or delete a message (Forbidden)\n")
    assert "no message you sent starts with" in one_line_error(cli(home, "--profile", "dan", "delete", first[:8],
                                                                   api=api))
    assert "not a message id" in one_line_error(cli(home, "--profile", "dan", "delete", "xy", api=api))
    assert "(MessageDeleted)" in one_line_error(cli(home, "--profile", "shir", "edit", second, "again", api=api))
    assert "(MessageNotFound)" in one_line_error(cli(home, "--profile", "shir", "delete",
                                                     "00000000-0000-4000-8000-000000000000", api=api))
    assert [after_time(line) for line in ok(cli(home, "--profile", "dan", "history", shir, api=api))] == [
        "shir: see you at 6 (edited)", "shir: [deleted]", "shir: are you there?"]


def test_watch_prints_edits_and_deletions_as_they_happen_and_receipts_can_be_turned_off(server, tmp_path):
    home, api = tmp_path / "home", server.url
    dan = ok(cli(home, "--profile", "dan", "register", "dan", api=api))[0].split("user id ")[1].split()[0]
    alice = user(api, "alice", tmp_path)
    watcher = subprocess.Popen([sys.executable, "-m", "messaging_client", "--api", api, "--profile", "dan", "watch"],
                               cwd=PROJECT_ROOT, env={**os.environ, "MESSAGING_HOME": str(home)},
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: List[str] = []
    threading.Thread(target=lambda: lines.extend(iter(watcher.stdout.readline, "")), daemon=True).start()
    try:
        wait_until(lambda: any(line.startswith("watching as dan") for line in lines), 20, "watch did not start")
        sent = alice.store.outbox_state(alice.send(dan, "first draft"))["message_id"]
        wait_until(lambda: any(line.rstrip().endswith("] alice: first draft") for line in lines), DEADLINE_SECONDS,
                   f"no message: {lines}")
        alice.edit(sent, "second draft")
        wait_until(lambda: any(line.rstrip().endswith("] alice: second draft (edited)") for line in lines),
                   DEADLINE_SECONDS, f"no edit: {lines}")
        alice.delete(sent)
        wait_until(lambda: any(line.rstrip().endswith("] alice: [deleted]") for line in lines), DEADLINE_SECONDS,
                   f"no deletion: {lines}")
    finally:
        watcher.terminate()
        watcher.wait(10)

    # Reading (history) sends alice a receipt; with receipts off, it does not.
    [mid] = [alice.store.outbox_state(alice.send(dan, "read me"))["message_id"]]
    ok(cli(home, "--profile", "dan", "history", alice.me, api=api))
    alice.sync()
    assert alice.store.conversation(f"direct:{dan}").their_read_up_to == mid
    assert ok(cli(home, "--profile", "dan", "account", "receipts", "off", api=api)) == [
        "read receipts are off: others no longer see when you have read their messages"]
    alice.send(dan, "and me")
    ok(cli(home, "--profile", "dan", "history", alice.me, api=api))
    assert not [e for e in alice.sync() if e["type"] == "receipt"]
    assert alice.store.conversation(f"direct:{dan}").their_read_up_to == mid
