"""The web client on the stream (/sync), in a real browser as in
test_web_client.py: one account on two browsers shows one conversation (what
either device sent is its own on both), reading on one clears the unread
count on the other, and edits and deletions reach every device; a read
receipt turns the sender's ✓ into ✓✓ (and none comes once the reader turns
receipts off); a group shows who joined and left, and its members; a new
device loads a conversation from /history, page by page, not the whole stream."""
from __future__ import annotations

import re

from tests.e2e.test_web_client import PASSWORD, _handle, browser, people, server  # noqa: F401 (fixtures)
from tests.support.devserver import post_json

try:
    from playwright.sync_api import expect
except ImportError:  # test_web_client's browser fixture fails clearly
    pass


def _message(person, text: str):
    return person.page.locator("#messages .msg", has_text=text)


def test_one_account_on_two_browsers_shares_sent_messages_reads_edits_and_deletions(people, tmp_path):
    handle = _handle("Alice")
    laptop = people("Alice", handle=handle, password=PASSWORD, device="Laptop").live()
    bob = people("Bob").live()
    laptop.start_direct(bob.user_id, "Bob")
    laptop.send("from the laptop")

    # A second browser signs in and reads the stream from its start: the laptop's message is its own.
    phone = people("Alice", register=False, device="Phone").sign_in(handle, PASSWORD).live()
    direct = f"d:{bob.user_id}"
    phone.open(direct)
    expect(phone.page.locator("#messages .msg.mine .text")).to_have_text(["from the laptop"])
    expect(phone.page.locator("#messages .msg.mine .who")).to_have_text(["You"])
    phone.send("from the phone")
    # Live on the laptop, on the right, and once.
    expect(laptop.page.locator("#messages .msg.mine .text")).to_have_text(["from the laptop", "from the phone"])
    expect(laptop.page.locator("#messages .msg.theirs")).to_have_count(0)
    bob.open(f"d:{laptop.user_id}")
    expect(bob.page.locator("#messages .msg.theirs .text")).to_have_text(["from the laptop", "from the phone"])

    # Both devices look elsewhere; Bob writes: unread on both; read on the phone, cleared on the laptop too.
    laptop.start_direct(laptop.user_id, None, shown="Notes to self")
    phone.start_direct(phone.user_id, None, shown="Notes to self")
    bob.send("are you there?")
    expect(laptop.conversation(direct)).to_have_attribute("data-unread", "1")
    expect(phone.conversation(direct)).to_have_attribute("data-unread", "1")
    phone.open(direct)
    expect(phone.texts().last).to_have_text("are you there?")
    expect(phone.conversation(direct)).to_have_attribute("data-unread", "0")
    expect(laptop.conversation(direct)).to_have_attribute("data-unread", "0")
    expect(laptop.page).to_have_title("Messaging")

    # Deleting asks first, in the page; then the message is gone on every device.
    laptop.open(direct)
    mine = _message(laptop, "from the laptop")
    mine.get_by_role("button", name=re.compile(r"^Delete message")).click()
    expect(mine.get_by_role("group", name="Delete this message?")).to_contain_text("Delete this message for everyone?")
    expect(mine.get_by_role("button", name="Keep")).to_be_focused()  # the safe choice under the finger
    laptop.screenshot(tmp_path, "delete-asks")
    mine.get_by_role("button", name="Keep").click()
    expect(mine.locator(".text")).to_have_text("from the laptop")
    mine.get_by_role("button", name=re.compile(r"^Delete message")).click()
    mine.get_by_role("button", name="Delete for everyone").click()
    deleted = "This message was deleted"
    for person in (laptop, phone, bob):
        expect(person.texts()).to_have_text([deleted, "from the phone", "are you there?"])
    expect(laptop.page.locator("#messages .msg.deleted")).not_to_contain_text("Edit")

    # Editing in place on the phone: "(edited)" and the new text everywhere.
    key = _message(phone, "from the phone").get_attribute("data-key")
    ours = phone.page.locator(f'#messages .msg[data-key="{key}"]')  # its text is in a box while edited
    ours.get_by_role("button", name=re.compile(r"^Edit message")).click()
    box = ours.get_by_role("textbox", name="Edit the message")
    expect(box).to_be_focused()
    expect(box).to_have_value("from the phone")
    box.press("Escape")  # cancelled: nothing changes
    expect(ours.locator(".text")).to_have_text("from the phone")
    ours.get_by_role("button", name=re.compile(r"^Edit message")).click()
    box.fill("from the phone, corrected")
    box.press("Enter")
    for person in (phone, laptop, bob):
        expect(person.texts()).to_have_text([deleted, "from the phone, corrected", "are you there?"])
        expect(_message(person, "from the phone, corrected").locator(".edited")).to_have_text("(edited)")
    phone.screenshot(tmp_path, "edited-phone")

    # A reload keeps it all (the store holds the stream's state and its cursor).
    laptop.page.reload()
    laptop.live()
    expect(laptop.texts()).to_have_text([deleted, "from the phone, corrected", "are you there?"])
    expect(laptop.conversation(direct)).to_have_attribute("data-unread", "0")


def test_a_read_receipt_turns_the_senders_tick_into_two_unless_the_reader_turned_receipts_off(people, tmp_path):
    alice, bob = people("Alice").live(), people("Bob").live()
    alice.start_direct(bob.user_id, "Bob")
    alice.send("did you read this?")
    first = _message(alice, "did you read this?")
    expect(first.locator(".state")).to_have_text("✓")
    expect(first).to_have_attribute("data-read", "false")
    expect(first.get_by_role("img", name="Sent")).to_be_visible()
    bob.open(f"d:{alice.user_id}")
    expect(first).to_have_attribute("data-read", "true")
    expect(first.locator(".state")).to_have_text("✓✓")
    expect(first.get_by_role("img", name="Read")).to_be_visible()
    alice.screenshot(tmp_path, "read-receipt")

    # Bob turns read receipts off (Account); the setting is the server's.
    dialog = bob.account()
    receipts = dialog.get_by_label("Send read receipts")
    expect(receipts).to_be_checked()
    expect(receipts).to_be_enabled()
    receipts.uncheck()
    expect(dialog.locator("#receipts-status")).to_contain_text("no longer see")
    dialog.get_by_role("button", name="Close").click()
    dialog = bob.account()
    expect(receipts).to_be_enabled()
    expect(receipts).not_to_be_checked()
    dialog.get_by_role("button", name="Close").click()

    bob.create_group("Elsewhere")  # Bob looks away while Alice writes
    alice.send("and this one?")
    expect(bob.conversation(f"d:{alice.user_id}")).to_have_attribute("data-unread", "1")
    with bob.page.expect_response(lambda response: response.url.endswith("/mark_read")) as marked:
        bob.open(f"d:{alice.user_id}")
    assert marked.value.ok
    # Bob's reply comes after his read in Alice's stream: a receipt would have come before it.
    bob.send("read, but I do not tell")
    expect(alice.texts().last).to_have_text("read, but I do not tell")
    expect(_message(alice, "and this one?")).to_have_attribute("data-read", "false")
    expect(first).to_have_attribute("data-read", "true")


def test_a_group_shows_who_joined_and_left_and_lists_its_members(people, tmp_path):
    a_handle, b_handle = _handle("Alice"), _handle("Bob")
    alice = people("Alice", handle=a_handle).live()
    bob = people("Bob", handle=b_handle).live()
    group_id = alice.create_group("Climbing")
    expect(alice.page.locator("#messages .event-line")).to_have_text(["You joined"])
    bob.join_group(group_id, "Climbing club")
    expect(alice.page.locator("#messages .event-line")).to_have_text(["You joined", "Bob joined"])
    expect(bob.page.locator("#messages .event-line")).to_have_text(["You joined"])
    bob.send("hello all")
    expect(alice.page.locator("#messages li:not(.empty)")).to_have_text(
        ["You joined", "Bob joined", re.compile("hello all")])

    members = alice.page.get_by_role("button", name="Members")
    expect(members).to_have_attribute("aria-expanded", "false")
    members.click()
    expect(members).to_have_attribute("aria-expanded", "true")
    panel = alice.page.locator("#members-panel")
    expect(panel.locator("#members-count")).to_have_text("2 members")
    expected = sorted([(alice.user_id, f"Alice @{a_handle} (you)"), (bob.user_id, f"Bob @{b_handle}")])  # by user id
    expect(panel.locator(".member")).to_have_text([text for _, text in expected])
    alice.screenshot(tmp_path, "group-members")

    # Bob leaves: a line says so, and the open list follows.
    bob.page.get_by_role("button", name="Leave group").click()
    expect(alice.page.locator("#messages .event-line")).to_have_text(["You joined", "Bob joined", "Bob left"])
    expect(panel.locator("#members-count")).to_have_text("1 member")
    expect(panel.locator(".member")).to_have_text([f"Alice @{a_handle} (you)"])
    panel.get_by_role("button", name="Close").click()
    expect(panel).to_be_hidden()
    expect(members).to_be_focused()


def test_a_new_device_loads_a_conversation_from_history_not_the_whole_stream(people, server):
    handle = _handle("Alice")
    alice = people("Alice", handle=handle, password=PASSWORD).live()
    bob = people("Bob").live()
    bob.start_direct(alice.user_id, "Alice")
    for n in range(60):  # more than one page of /history (50)
        reply = post_json(server.url, "/send", bob.token(), sending_user_id=bob.user_id, receiving_user_id=alice.user_id,
                          message_text=f"note {n}")
        assert reply.status == 201, reply
    expect(alice.conversation(f"d:{bob.user_id}")).to_have_attribute("data-unread", "60")

    tablet = people("Alice", register=False, device="Tablet")
    syncs: list = []
    tablet.page.on("request", lambda r: syncs.append(r.post_data_json) if r.url.endswith("/sync") else None)
    tablet.sign_in(handle, PASSWORD).live()
    direct = f"d:{bob.user_id}"
    expect(tablet.conversation(direct)).to_have_attribute("data-unread", "60")  # the server's count
    tablet.open(direct)
    expect(tablet.texts()).to_have_count(50)
    expect(tablet.texts().last).to_have_text("note 59")
    tablet.page.get_by_role("button", name="Load earlier messages").click()
    expect(tablet.texts()).to_have_count(60)
    expect(tablet.texts().first).to_have_text("note 0")
    expect(tablet.page.get_by_role("button", name="Load earlier messages")).to_have_count(0)
    assert syncs and all(body["after"] > 0 for body in syncs), syncs  # never the whole stream from 0
    # Read on the tablet: the first browser's count follows.
    expect(alice.conversation(direct)).to_have_attribute("data-unread", "0")
