"""The web client (chalicelib/static/) in a real browser: Debian's chromium,
driven by Playwright, against `make run`'s development server over real
sockets. Two browser contexts are two people: direct and group chats
delivered live over the WebSocket and over the long-poll fallback, unread
counts, history across a reload, blocking, a send retried after a network
error delivered once, retries as chalicelib/contract.py allows them (a 503
or a gateway's 504 is retried, a 500 is not), forgetting a profile only once
confirmed, and a phone-sized screen. Accounts and devices: signing in on
another browser with a handle and password or a link code, the list of
devices and signing one out (that browser returns to signing in), a handle
and password set later, starting a chat by handle, names from the server
instead of "User 6f0c…" (kept a day), and deleting an account only once
confirmed. Screenshots go to the test's tmp_path (their paths are printed:
`pytest -s` shows them)."""
from __future__ import annotations

import json
import re
import secrets
import urllib.request
from typing import Callable, Iterator, List, Optional

import pytest

from tests.support.devserver import DevServer

try:
    from playwright.sync_api import Browser, Page, Route, expect, sync_playwright

    from tests.support.browser import CHROMIUM, DESKTOP, UUID, Person, launch
except ImportError:  # a clear failure below, never a silent skip
    sync_playwright = None

AUTH_SECRET = "web-client-test-secret-0123456789abcdef"
PHONE = {"width": 375, "height": 700}
PASSWORD = "correct horse battery"
NEW_PASSWORD = "staple and a new horse"


def _handle(name: str) -> str:
    """Handles are unique on the module's server: each test gets fresh ones."""
    return f"{name.lower()}_{secrets.token_hex(4)}"


def _answer(route, status: int, code: str, message: str, **headers: str) -> None:
    """Answers the intercepted request with the API's error envelope."""
    route.fulfill(status=status, headers=headers, content_type="application/json",
                  body=json.dumps({"Code": code, "Message": message}))


def _unavailable(route: Route) -> None:
    """A 503, retried after its Retry-After (1 s)."""
    _answer(route, 503, "ServiceUnavailable", "the database cannot be reached", **{"Retry-After": "1"})


def _broken(route: Route) -> None:
    """A 500, which the contract never retries."""
    _answer(route, 500, "InternalServerError", "internal error, request id test-500")


def _intercept(page: Page, path: str, *first: Callable[[Route], None]) -> List[Optional[str]]:
    """The n-th request the page makes to /`path` is handled by first[n], the ones after reach the
    server. Answers the list it fills, one entry per request: its Idempotency-Key (None on a read)."""
    keys: List[Optional[str]] = []

    def handle(route: Route) -> None:
        keys.append(route.request.headers.get("idempotency-key"))
        if len(keys) <= len(first):
            first[len(keys) - 1](route)
        else:
            route.continue_()

    page.route(f"**/{path}", handle)
    return keys


@pytest.fixture(scope="module")
def browser() -> Iterator["Browser"]:
    if sync_playwright is None:
        pytest.fail("the browser tests need the playwright package: .venv/bin/pip install -r requirements-dev.txt "
                    "(make test installs it)")
    if not CHROMIUM.exists():
        pytest.fail(f"the browser tests need Debian's chromium at {CHROMIUM}: apt-get install chromium "
                    "(make test installs it when run as root)")
    with sync_playwright() as playwright:
        launched = launch(playwright)
        yield launched
        launched.close()


def _server(tmp_path_factory, name: str, **settings: str) -> Iterator[DevServer]:
    folder = tmp_path_factory.mktemp(name)
    server = DevServer(folder / "devserver.log", DATABASE_URL=f"sqlite:///{folder / 'web.sqlite3'}",
                       AUTH_SECRET=AUTH_SECRET, **settings).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[DevServer]:
    yield from _server(tmp_path_factory, "web")


@pytest.fixture(scope="module")
def poll_server(tmp_path_factory) -> Iterator[DevServer]:
    # No WEBSOCKET_URL: /connect_ticket answers url null, so the client long-polls.
    yield from _server(tmp_path_factory, "web-poll", WEBSOCKET_URL="")


@pytest.fixture
def people(browser, server) -> Iterator:
    started: List[Person] = []

    def person(name: str, on: DevServer = server, viewport=DESKTOP, **how) -> Person:
        started.append(Person(browser, on, name, viewport, **how))
        return started[-1]

    yield person
    for p in started:
        p.close()


def test_a_direct_chat_is_delivered_live_both_ways_and_shown_as_text(people, tmp_path):
    alice, bob = people("Alice").live(), people("Bob").live()
    alice.start_direct(bob.user_id, "Bob")
    alice.send("Hello Bob <b>not bold</b> <img src=x>")
    # Bob has not opened anything: the conversation appears, unread, without a reload.
    expect(bob.conversation(f"d:{alice.user_id}")).to_have_attribute("data-unread", "1")
    expect(bob.page).to_have_title("(1) Messaging")
    bob.open(f"d:{alice.user_id}")
    expect(bob.texts()).to_have_text(["Hello Bob <b>not bold</b> <img src=x>"])
    assert bob.page.locator("#messages img, #messages b").count() == 0  # text, never markup
    expect(bob.conversation(f"d:{alice.user_id}")).to_have_attribute("data-unread", "0")
    expect(bob.page).to_have_title("Messaging")
    box = bob.page.locator("#composer-text")
    box.press_sequentially("Hi Alice!")
    box.press("Shift+Enter")  # a new line, not a send
    box.press_sequentially("Second line")
    expect(box).to_have_value("Hi Alice!\nSecond line")
    box.press("Enter")
    expect(bob.mine().last).to_have_attribute("data-state", "sent")
    expect(alice.texts()).to_have_text(["Hello Bob <b>not bold</b> <img src=x>", re.compile("Hi Alice!")])
    assert alice.texts().last.text_content() == "Hi Alice!\nSecond line"
    expect(alice.page.locator("#messages .msg.theirs .who")).to_have_text(["Bob"])
    alice.screenshot(tmp_path, "direct-alice")
    bob.screenshot(tmp_path, "direct-bob")

    alice.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=alice.server.url)
    alice.page.get_by_role("button", name="Copy").first.click()
    expect(alice.page.locator("#copy-me-id")).to_have_text("Copied")
    assert alice.page.evaluate("navigator.clipboard.readText()") == alice.user_id


def test_a_group_chat_is_joined_by_id_and_both_see_each_others_messages_live(people, tmp_path):
    alice, bob = people("Alice").live(), people("Bob").live()
    group_id = alice.create_group("Climbing")
    assert UUID.match(group_id)
    bob.join_group(group_id, "Climbing club")
    alice.send("Saturday at nine?")
    expect(bob.texts()).to_have_text(["Saturday at nine?"])
    bob.send("Count me in")
    expect(alice.texts()).to_have_text(["Saturday at nine?", "Count me in"])
    # The sender's name comes from the server (/users), not "User 0bcf3d28".
    expect(bob.page.locator("#messages .msg .who")).to_have_text(["Alice", "You"])
    # Leaving: the composer closes, and sending to the group is refused until joining again.
    bob.page.get_by_role("button", name="Leave group").click()
    expect(bob.page.locator("#composer-text")).to_be_disabled()
    expect(bob.page.locator("#membership-button")).to_have_text("Join group")
    alice.screenshot(tmp_path, "group-alice")
    bob.screenshot(tmp_path, "group-bob")


def test_unread_counts_rise_for_a_closed_conversation_fall_when_opened_and_a_reload_keeps_the_history(people, tmp_path):
    alice, bob = people("Alice").live(), people("Bob").live()
    alice.start_direct(bob.user_id, "Bob")
    alice.send("first")
    direct = f"d:{alice.user_id}"
    bob.open(direct)
    expect(bob.texts()).to_have_text(["first"])
    bob.create_group("Elsewhere")  # now another conversation is open
    alice.send("second")
    alice.send("third")
    expect(bob.conversation(direct)).to_have_attribute("data-unread", "2")
    expect(bob.page.locator("#toggle-sidebar")).to_contain_text("2 unread")
    bob.open(direct)
    expect(bob.conversation(direct)).to_have_attribute("data-unread", "0")
    expect(bob.texts()).to_have_text(["first", "second", "third"])

    bob.page.reload()
    bob.live()
    expect(bob.conversation(direct)).to_have_attribute("aria-current", "true")  # the open one stays open
    expect(bob.texts()).to_have_text(["first", "second", "third"])
    # It reads on from its cursor: the next message arrives once, nothing twice.
    alice.send("after the reload")
    expect(bob.texts()).to_have_text(["first", "second", "third", "after the reload"])
    bob.screenshot(tmp_path, "after-reload-bob")

    # Signing out keeps the profile in this browser; continuing with it brings the history back.
    bob.page.get_by_role("button", name="Sign out").click()
    bob.page.get_by_role("button", name="Continue as Bob").click()
    bob.live()
    expect(bob.page.locator("#me-id")).to_have_value(bob.user_id)
    expect(bob.texts()).to_have_text(["first", "second", "third", "after the reload"])


def test_a_blocked_sender_is_told_near_the_composer_and_can_retry_after_an_unblock(people, tmp_path):
    alice, bob = people("Alice").live(), people("Bob").live()
    bob.start_direct(alice.user_id, "Alice")
    bob.page.get_by_role("button", name="Block", exact=True).click()
    expect(bob.page.get_by_role("button", name="Unblock")).to_be_visible()
    alice.start_direct(bob.user_id, "Bob")
    alice.page.locator("#composer-text").fill("are you there?")
    alice.page.locator("#composer-text").press("Enter")
    expect(alice.page.locator("#composer-status")).to_contain_text("blocked you")
    expect(alice.mine().last).to_have_attribute("data-state", "failed")
    alice.screenshot(tmp_path, "blocked-alice")

    bob.page.get_by_role("button", name="Unblock").click()
    expect(bob.page.get_by_role("button", name="Block", exact=True)).to_be_visible()
    alice.page.get_by_role("button", name="Retry").click()
    expect(alice.mine().last).to_have_attribute("data-state", "sent")
    expect(alice.page.locator("#composer-status")).to_have_text("")
    expect(bob.texts()).to_have_text(["are you there?"])


def test_a_send_whose_answer_is_lost_is_retried_with_its_key_and_delivered_once(people, server):
    alice, bob = people("Alice").live(), people("Bob").live()
    alice.start_direct(bob.user_id, "Bob")

    def lose_the_answer(route):
        route.fetch()          # the server stores and delivers it...
        route.abort("failed")  # ...and the browser sees a network error

    keys = _intercept(alice.page, "send", lose_the_answer)
    alice.page.locator("#composer-text").fill("exactly once")
    # The stream may show the message sent (its own `message` event) before the retry is answered: wait for that.
    with alice.page.expect_response(lambda response: response.url.endswith("/send")) as retried:
        alice.page.locator("#composer-text").press("Enter")
    assert retried.value.ok
    expect(alice.mine().last).to_have_attribute("data-state", "sent")
    expect(alice.mine()).to_have_count(1)
    assert len(keys) == 2 and keys[0] == keys[1] and UUID.match(keys[0]), keys
    # The retry was acknowledged, so both attempts are committed: the inbox holds it once.
    request = urllib.request.Request(
        f"{server.url}/read_messages?user_id={bob.user_id}&after=0", method="POST", data=b"",
        headers={"Authorization": f"Bearer {bob.token()}"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert [m["text"] for m in json.loads(answer.read())["messages"]] == ["exactly once"]
    bob.open(f"d:{alice.user_id}")
    expect(bob.texts()).to_have_text(["exactly once"])


def test_without_a_websocket_the_client_long_polls_and_still_gets_messages_live(people, poll_server, tmp_path):
    alice = people("Alice", on=poll_server).live("long-poll")
    bob = people("Bob", on=poll_server).live("long-poll")
    alice.start_direct(bob.user_id, "Bob")
    alice.send("over a long-poll")
    expect(bob.conversation(f"d:{alice.user_id}")).to_have_attribute("data-unread", "1")
    bob.open(f"d:{alice.user_id}")
    expect(bob.texts()).to_have_text(["over a long-poll"])
    bob.send("answered the same way")
    expect(alice.texts()).to_have_text(["over a long-poll", "answered the same way"])
    bob.screenshot(tmp_path, "long-poll-bob")


def test_at_375_pixels_wide_the_conversation_and_the_composer_are_visible(people, tmp_path):
    alice = people("Alice", viewport=PHONE).live()
    bob = people("Bob").live()
    alice.start_direct(bob.user_id, "Bob")
    alice.send("from a phone")
    bob.open(f"d:{alice.user_id}")
    bob.send("looks fine here")
    expect(alice.texts()).to_have_text(["from a phone", "looks fine here"])
    page = alice.page
    for selector in ("#composer-text", "#send-button", "#messages", "#chat-title", "#me-id"):
        box = page.locator(selector).bounding_box()
        assert box is not None, selector
        assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"] + 0.5, (selector, box)
        assert box["y"] >= 0 and box["y"] + box["height"] <= PHONE["height"] + 0.5, (selector, box)
    for text in alice.texts().all():
        expect(text).to_be_in_viewport()
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]  # no sideways scrolling
    alice.screenshot(tmp_path, "phone-chat")
    # The list folds above the chat: one tap shows it, and the chat stays below.
    page.locator("#toggle-sidebar").click()
    expect(alice.conversation(f"d:{bob.user_id}")).to_be_visible()
    expect(page.locator("#composer-text")).to_be_visible()
    alice.screenshot(tmp_path, "phone-list")


def test_a_lost_frame_is_filled_by_a_cursor_read_and_a_dropped_socket_reconnects_with_a_new_ticket(people):
    alice, bob = people("Alice").live(), people("Bob").live()
    alice.start_direct(bob.user_id, "Bob")
    alice.send("hello")
    bob.open(f"d:{alice.user_id}")
    sockets: list = []
    dropped: List[str] = []

    def between(ws):  # stands between Bob's page and the server's socket
        sockets.append(ws)
        server_side = ws.connect_to_server()

        def from_server(frame):
            # The first message frame is lost on the way (the stream's other events, a read say, pass).
            if len(sockets) == 1 and not dropped and json.loads(frame).get("type") == "message":
                dropped.append(frame)
                return
            ws.send(frame)

        server_side.on_message(from_server)

    bob.page.route_web_socket(re.compile(r"/ws\?ticket="), between)
    bob.page.reload()
    bob.live()
    alice.send("lost on the way")
    alice.send("shows the gap")
    # Frame 3 arrives after a cursor of 1: the gap read brings frame 2 too, in order.
    expect(bob.texts()).to_have_text(["hello", "lost on the way", "shows the gap"])
    assert json.loads(dropped[0])["message"]["text"] == "lost on the way"

    sockets[0].close()
    expect(bob.page.locator("#conn-status")).not_to_have_text("Live (WebSocket)")
    alice.send("while Bob reconnects")
    bob.live()
    expect(bob.texts()).to_have_text(["hello", "lost on the way", "shows the gap", "while Bob reconnects"])
    assert len(sockets) == 2 and sockets[0].url != sockets[1].url  # each connection has its own ticket
    alice.send("live again")
    expect(bob.texts()).to_have_text(["hello", "lost on the way", "shows the gap", "while Bob reconnects", "live again"])


def test_offline_and_rate_limited_sends_are_kept_told_and_retried_and_a_refused_token_asks_to_sign_in_again(
        people, tmp_path):
    alice, bob = people("Alice").live(), people("Bob").live()
    alice.start_direct(bob.user_id, "Bob")
    box, status = alice.page.locator("#composer-text"), alice.page.locator("#composer-status")

    alice.context.set_offline(True)
    box.fill("written offline")
    box.press("Enter")
    expect(status).to_contain_text("You are offline")
    expect(alice.mine().last).to_have_attribute("data-state", "pending")
    alice.screenshot(tmp_path, "offline-alice")
    alice.context.set_offline(False)  # the browser's online event retries at once
    expect(alice.mine().last).to_have_attribute("data-state", "sent")
    expect(status).to_have_text("")

    keys = _intercept(alice.page, "send", lambda route: _answer(route, 429, "RateLimited", "too many sends",
                                                                **{"Retry-After": "1"}))
    box.fill("after the limit")
    box.press("Enter")
    expect(status).to_contain_text("Too many requests: the server asks to wait 1 s")
    expect(alice.mine().last).to_have_attribute("data-state", "sent")
    assert len(keys) == 2 and keys[0] == keys[1], keys  # answered 429, then sent again under its key
    bob.open(f"d:{alice.user_id}")
    expect(bob.texts()).to_have_text(["written offline", "after the limit"])

    # A token the server no longer accepts: back to signing in, with the reason.
    alice.page.evaluate("""() => {
        const profiles = JSON.parse(localStorage.getItem('messaging.profiles.v1'));
        profiles[0].token = profiles[0].token.slice(0, -6) + 'AAAAAA';
        localStorage.setItem('messaging.profiles.v1', JSON.stringify(profiles));
    }""")
    alice.page.reload()
    expect(alice.page.locator("#signin-status")).to_contain_text("Unauthorized")
    expect(alice.page.get_by_role("button", name="Continue as Alice")).to_be_visible()


def test_a_send_answered_500_is_marked_failed_not_retried_and_its_retry_button_sends_it_under_its_key(people):
    alice, bob = people("Alice").live(), people("Bob").live()
    alice.start_direct(bob.user_id, "Bob")
    box, status = alice.page.locator("#composer-text"), alice.page.locator("#composer-status")
    keys = _intercept(alice.page, "send", _broken)
    box.fill("hits a bug")
    box.press("Enter")
    failed = alice.page.locator("#messages .msg.mine", has_text="hits a bug")
    expect(failed).to_have_attribute("data-state", "failed")
    expect(failed.locator(".why")).to_have_text("internal error, request id test-500")
    expect(status).to_have_text("internal error, request id test-500")  # no "Trying again"
    # One message at a time, in order: the next one going out shows the first is no longer being retried.
    box.fill("the next one")
    box.press("Enter")
    expect(alice.page.locator("#messages .msg.mine", has_text="the next one")).to_have_attribute("data-state", "sent")
    expect(failed).to_have_attribute("data-state", "failed")
    assert len(keys) == 2 and keys[0] != keys[1], keys
    bob.open(f"d:{alice.user_id}")
    expect(bob.texts()).to_have_text(["the next one"])

    failed.get_by_role("button", name="Retry").click()
    expect(failed).to_have_attribute("data-state", "sent")
    assert len(keys) == 3 and keys[2] == keys[0], keys
    expect(bob.texts()).to_have_text(["the next one", "hits a bug"])


def test_a_send_answered_503_or_a_gateways_own_504_is_retried_under_its_key_and_delivered_once(people):
    alice, bob = people("Alice").live(), people("Bob").live()
    alice.start_direct(bob.user_id, "Bob")
    box, status = alice.page.locator("#composer-text"), alice.page.locator("#composer-status")

    def timed_out(route):  # API Gateway's own answer: no envelope
        route.fulfill(status=504, content_type="application/json", body='{"message": "Endpoint request timed out"}')

    keys = _intercept(alice.page, "send", _unavailable, timed_out)
    box.fill("worth the wait")
    box.press("Enter")
    expect(status).to_contain_text("The server is unavailable right now. Trying again in 1 s; the message is kept.")
    expect(alice.mine().last).to_have_attribute("data-state", "pending")
    expect(alice.mine().last).to_have_attribute("data-state", "sent")
    expect(status).to_have_text("")
    assert len(keys) == 3 and len(set(keys)) == 1 and UUID.match(keys[0]), keys
    bob.open(f"d:{alice.user_id}")
    expect(bob.texts()).to_have_text(["worth the wait"])


def test_a_read_answered_503_is_retried_but_one_answered_500_stops_live_updates_until_reconnect(people, tmp_path):
    alice, bob = people("Alice").live(), people("Bob").live()
    alice.start_direct(bob.user_id, "Bob")
    alice.send("before")
    bob.open(f"d:{alice.user_id}")
    expect(bob.texts()).to_have_text(["before"])
    reads = _intercept(bob.page, "sync", _unavailable, _broken)
    bob.page.reload()
    conn, reconnect = bob.page.locator("#conn-status"), bob.page.get_by_role("button", name="Reconnect")
    expect(conn).to_contain_text("Cannot read new messages: The server is unavailable right now. Trying again in 1 s")
    expect(conn).to_have_text("Cannot read new messages: internal error, request id test-500")
    expect(conn).to_have_attribute("data-state", "stopped")
    expect(reconnect).to_be_visible()
    bob.screenshot(tmp_path, "reads-stopped-bob")
    alice.send("while Bob's reads are stopped")
    assert len(reads) == 2, reads  # the 500 is not retried by itself
    expect(bob.texts()).to_have_text(["before"])

    reconnect.click()
    bob.live()
    expect(reconnect).to_be_hidden()
    expect(bob.texts()).to_have_text(["before", "while Bob's reads are stopped"])
    alice.send("live again")
    expect(bob.texts()).to_have_text(["before", "while Bob's reads are stopped", "live again"])


def test_forgetting_a_profile_asks_first_and_only_the_confirmation_deletes_it(people, tmp_path):
    alice = people("Alice").live()
    alice.start_direct(alice.user_id, "Notes to self")
    alice.send("a note to myself")
    page = alice.page
    page.get_by_role("button", name="Sign out").click()
    page.get_by_role("button", name="Forget Alice", exact=True).click()
    expect(page.get_by_role("button", name="Yes, forget Alice")).to_be_visible()
    expect(page.get_by_role("button", name="Keep Alice")).to_be_focused()
    alice.screenshot(tmp_path, "forget-asks-alice")
    assert alice.stored() == (True, [alice.user_id])
    # Leaving the question unanswered deletes nothing either.
    page.reload()
    expect(page.get_by_role("button", name="Continue as Alice")).to_be_visible()
    page.get_by_role("button", name="Forget Alice", exact=True).click()
    page.get_by_role("button", name="Keep Alice").click()
    expect(page.get_by_role("button", name="Forget Alice", exact=True)).to_be_focused()
    assert alice.stored() == (True, [alice.user_id])

    page.get_by_role("button", name="Forget Alice", exact=True).click()
    page.get_by_role("button", name="Yes, forget Alice").click()
    expect(page.locator("#saved-profiles")).to_be_hidden()
    assert alice.stored() == (False, [])


def test_another_site_cannot_frame_the_client(browser, server, tmp_path):
    """A page on another origin frames the client (clickjacking): the browser
    refuses to render it, by the page's frame-ancestors 'none' and X-Frame-Options."""
    import http.server
    import threading

    attacker = tmp_path / "attacker"
    attacker.mkdir()
    (attacker / "index.html").write_text(f'<!doctype html><iframe id="victim" src="{server.url}/"></iframe>')
    handler = lambda *a: http.server.SimpleHTTPRequestHandler(*a, directory=str(attacker))  # noqa: E731
    site = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=site.serve_forever, daemon=True).start()
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(f"http://127.0.0.1:{site.server_address[1]}/index.html")
        frame = page.locator("#victim").element_handle().content_frame()
        frame.wait_for_load_state()
        assert not frame.url.startswith(server.url), frame.url
        assert frame.locator("#me-name, button").count() == 0
    finally:
        context.close()
        site.shutdown()


def test_a_handle_and_password_sign_the_account_in_on_a_second_browser_which_sends_as_the_same_person(
        people, tmp_path):
    handle = _handle("Alice")
    laptop = people("Alice", handle=handle, password=PASSWORD, device="Laptop").live()
    expect(laptop.page.locator("#me-handle")).to_have_text(f"@{handle}")
    bob = people("Bob").live()
    laptop.start_direct(bob.user_id, "Bob")
    laptop.send("from the laptop")

    phone = people("Alice", register=False, device="Phone")
    expect(phone.page.locator("#signin")).to_be_visible()
    login = phone.page.locator("#login-form")
    login.get_by_label("Handle", exact=True).fill(handle.upper())  # any case
    login.get_by_label("Password", exact=True).fill("not the password")
    login.get_by_role("button", name="Sign in").click()
    # The server's own words, the same for an unknown handle.
    expect(phone.page.locator("#login-status")).to_have_text("Not signed in: the handle or the password is wrong")
    expect(phone.page.locator("#login-status")).to_have_class(re.compile(r"\berror\b"))
    expect(phone.page.locator("#app")).to_be_hidden()
    phone.screenshot(tmp_path, "wrong-password")

    phone.sign_in(handle.upper(), PASSWORD).live()
    assert phone.user_id == laptop.user_id
    expect(phone.page.locator("#me-handle")).to_have_text(f"@{handle}")
    assert phone.token() != laptop.token()  # a session of its own
    phone.start_direct(bob.user_id, "Bob")
    phone.send("from the phone")
    bob.open(f"d:{laptop.user_id}")
    expect(bob.texts()).to_have_text(["from the laptop", "from the phone"])
    expect(bob.page.locator("#chat-title")).to_have_text("Alice")
    expect(bob.page.locator("#messages .msg.theirs .who")).to_have_text(["Alice", "Alice"])
    bob.send("one Alice, two devices")
    # Each device shows the account's whole conversation: what the other device sent is its own too.
    both = ["from the laptop", "from the phone", "one Alice, two devices"]
    expect(laptop.texts()).to_have_text(both)
    expect(phone.texts()).to_have_text(both)
    expect(phone.page.locator("#messages .msg.mine .who")).to_have_text(["You", "You"])
    phone.screenshot(tmp_path, "second-device")


def test_a_link_code_signs_a_device_in_and_a_device_signed_out_from_the_list_returns_to_signing_in(
        people, tmp_path):
    handle = _handle("Alice")
    laptop = people("Alice", handle=handle, password=PASSWORD, device="Laptop").live()
    dialog = laptop.account()
    expect(dialog.locator("#link-code-box")).to_be_hidden()
    dialog.get_by_role("button", name="Show a link code").click()
    code_text = dialog.locator("#link-code-text")
    expect(code_text).to_have_text(re.compile(r"^[0-9A-Z]{5}-[0-9A-Z]{5}$"))
    expect(dialog.locator("#link-code-timer")).to_have_text(re.compile(r"^Valid for 4:5\d$"))
    laptop.screenshot(tmp_path, "link-code")
    code = code_text.text_content() or ""

    tablet = people("Alice", register=False, device="Tablet").link(code.lower()).live()
    assert tablet.user_id == laptop.user_id
    # The laptop sees its code used, and the tablet in its list.
    expect(dialog.locator("#link-code-status")).to_have_text("\u201cTablet\u201d signed in with the code.")
    expect(dialog.locator("#link-code-box")).to_be_hidden()
    sessions = dialog.locator("#session-list .session")
    expect(sessions.locator("strong")).to_have_text(["Laptop", "Tablet"])
    expect(sessions.first).to_contain_text("(this device)")
    expect(sessions.nth(1)).not_to_contain_text("(this device)")

    # A code works once.
    stranger = people("Mallory", register=False)
    stranger.page.locator("#link-form").get_by_label("Link code").fill(code)
    stranger.page.get_by_role("button", name="Link this device").click()
    expect(stranger.page.locator("#link-status")).to_have_text(
        "Not linked: the link code is wrong, used or expired: show a new one on a signed-in device")

    phone = people("Alice", register=False, device="Phone").sign_in(handle, PASSWORD).live()
    dialog.get_by_role("button", name="Close").click()
    expect(dialog).to_be_hidden()
    dialog = laptop.account()
    expect(sessions.locator("strong")).to_have_text(["Laptop", "Tablet", "Phone"])
    laptop.screenshot(tmp_path, "devices")

    # Signed out from the laptop: the tablet is told and is back at signing in, its token gone.
    dialog.get_by_role("button", name="Sign out Tablet").click()
    expect(dialog.locator("#sessions-status")).to_have_text("\u201cTablet\u201d is signed out.")
    expect(sessions.locator("strong")).to_have_text(["Laptop", "Phone"])
    expect(tablet.page.locator("#signin")).to_be_visible()
    expect(tablet.page.locator("#app")).to_be_hidden()
    expect(tablet.page.locator("#signin-status")).to_contain_text(
        "This device is no longer signed in as \u201cAlice\u201d (Unauthorized")
    assert tablet.token() is None
    tablet.screenshot(tmp_path, "signed-out-tablet")
    # Continuing with it asks for the password.
    tablet.page.get_by_role("button", name="Continue as Alice").click()
    expect(tablet.page.locator("#login-handle")).to_have_value(handle)
    expect(tablet.page.locator("#login-password")).to_be_focused()

    # Signing out everywhere, from the phone: the laptop goes back to signing in too.
    phone.account().get_by_role("button", name="Sign out everywhere").click()
    expect(phone.page.locator("#signin-status")).to_have_text(
        "You signed out everywhere (2 devices). The history stays in this browser until you forget the profile.")
    expect(phone.page.get_by_role("button", name="Continue as Alice")).to_be_visible()
    expect(laptop.page.locator("#signin")).to_be_visible()
    expect(laptop.page.get_by_role("dialog")).to_be_hidden()
    expect(laptop.page.locator("#signin-status")).to_contain_text("(Unauthorized")


def test_a_chat_started_by_handle_shows_the_names_from_the_server_kept_a_day(people, tmp_path):
    handle = _handle("Alice")
    alice = people("Alice", handle=handle).live()  # a handle without a password: found, not signed in with
    bob = people("Bob").live()
    bob._new_panel()
    bob.page.get_by_label("Direct chat: their handle or user id").fill(f"{handle}_nobody")
    bob.page.get_by_role("button", name="Start chat").click()
    expect(bob.page.locator("#sidebar-status")).to_have_text(
        f"Nobody has the handle @{handle}_nobody. Check its spelling.")

    bob.start_direct(f"@{handle.upper()}", None, shown="Alice")
    expect(bob.page.locator("#chat-handle")).to_have_text(f"@{handle}")
    expect(bob.page.locator("#chat-id")).to_have_value(alice.user_id)
    bob.send("found you by your handle")
    direct = f"d:{bob.user_id}"
    expect(alice.conversation(direct).locator(".conv-name")).to_have_text("Bob")
    alice.open(direct)
    expect(alice.page.locator("#chat-title")).to_have_text("Bob")
    expect(alice.page.locator("#messages .msg.theirs .who")).to_have_text(["Bob"])
    expect(alice.page.locator("#sidebar")).not_to_contain_text("User ")
    alice.screenshot(tmp_path, "names-alice")

    # Bob renames himself; Alice's browser keeps the name it has for a day, then asks again.
    dialog = bob.account()
    dialog.get_by_label("Name", exact=True).fill("Robert")
    dialog.get_by_role("button", name="Save changes").click()
    expect(dialog.locator("#account-status")).to_have_text("Saved.")
    expect(bob.page.locator("#me-name")).to_have_text("Robert")
    lookups: List[str] = []
    alice.page.on("request", lambda request: lookups.append(request.url) if request.url.endswith("/users") else None)
    alice.page.reload()
    alice.live()
    expect(alice.page.locator("#messages .msg.theirs .who")).to_have_text(["Bob"])
    assert lookups == []  # nothing older than a day: the store's names, no /users call
    alice.page.evaluate("""(db) => new Promise((resolve, reject) => {
        const open = indexedDB.open(db);
        open.onsuccess = () => {
            const tx = open.result.transaction('people', 'readwrite');
            const people = tx.objectStore('people');
            people.getAll().onsuccess = (e) => {
                for (const p of e.target.result) people.put({ ...p, fetched_at: Date.now() - 25 * 3600 * 1000 });
            };
            tx.oncomplete = () => { open.result.close(); resolve(); };
            tx.onerror = () => reject(tx.error);
        };
    })""", f"messaging-{alice.user_id}")
    alice.page.reload()
    expect(alice.page.locator("#chat-title")).to_have_text("Robert")
    expect(alice.page.locator("#messages .msg.theirs .who")).to_have_text(["Robert"])
    assert len(lookups) == 1, lookups


def test_a_handle_and_password_set_later_let_another_device_in_and_a_new_password_signs_it_out(
        people, tmp_path):
    desktop = people("Bob", device="Desktop").live()
    dialog = desktop.account()
    expect(dialog.locator("#account-current-row")).to_be_hidden()  # registered without a password
    handle = _handle("Bob")
    dialog.get_by_label("Handle", exact=True).fill(handle)
    dialog.get_by_label("New password").fill(PASSWORD)
    dialog.get_by_role("button", name="Save changes").click()
    expect(dialog.locator("#account-status")).to_have_text(
        f"Saved. Others can now find you as @{handle}. Other devices signed in were signed out: "
        "sign them in with the new password.")
    expect(desktop.page.locator("#me-handle")).to_have_text(f"@{handle}")
    expect(dialog.get_by_label("New password")).to_have_value("")  # not kept in the page
    expect(dialog.locator("#account-current-row")).to_be_visible()

    dialog.get_by_role("button", name="Close").click()
    laptop = people("Bob", register=False, device="Laptop").sign_in(handle, PASSWORD).live()
    laptop.start_direct(laptop.user_id, "Notes to self")
    laptop.send("kept on the laptop")
    dialog = desktop.account()
    dialog.get_by_label("New password").fill(NEW_PASSWORD)
    dialog.get_by_role("button", name="Save changes").click()
    expect(dialog.locator("#account-status")).to_have_text(
        "Enter your current password to change the handle or the password.")
    expect(dialog.get_by_label("Current password")).to_be_focused()
    dialog.get_by_label("Current password").fill("not the password")
    dialog.get_by_role("button", name="Save changes").click()
    expect(dialog.locator("#account-status")).to_have_text("The current password is wrong: nothing was changed.")
    desktop.screenshot(tmp_path, "change-password")
    dialog.get_by_label("Current password").fill(PASSWORD)
    dialog.get_by_role("button", name="Save changes").click()
    expect(dialog.locator("#account-status")).to_contain_text("Saved. Other devices signed in were signed out")
    expect(dialog.locator("#session-list .session strong")).to_have_text(["Desktop"])
    # The laptop was signed out by the new password; the old one no longer signs it in, the new one does.
    expect(laptop.page.locator("#signin-status")).to_contain_text("(Unauthorized")
    laptop.page.get_by_role("button", name="Continue as Bob").click()
    laptop.page.locator("#login-password").fill(PASSWORD)
    laptop.page.locator("#login-form").get_by_role("button", name="Sign in").click()
    expect(laptop.page.locator("#login-status")).to_contain_text("the handle or the password is wrong")
    laptop.sign_in(handle, NEW_PASSWORD).live()
    assert laptop.user_id == desktop.user_id
    laptop.open(f"d:{laptop.user_id}")  # signed in again, this browser's history is back
    expect(laptop.texts()).to_have_text(["kept on the laptop"])


def test_deleting_the_account_asks_first_and_then_others_see_a_deleted_account(people, tmp_path):
    a_handle, b_handle = _handle("Alice"), _handle("Bob")
    alice = people("Alice", handle=a_handle, password=PASSWORD).live()
    bob = people("Bob", handle=b_handle, password=PASSWORD).live()
    alice.start_direct(b_handle, None, shown="Bob")
    alice.send("goodbye soon")
    bob.open(f"d:{alice.user_id}")
    expect(bob.page.locator("#chat-title")).to_have_text("Alice")
    page = alice.page
    dialog = alice.account()
    dialog.get_by_role("button", name="Delete account").click()
    expect(dialog.locator("#delete-question")).to_contain_text("Delete \u201cAlice\u201d for good?")
    expect(dialog.locator("#delete-password")).to_be_focused()  # this account has a password
    alice.screenshot(tmp_path, "delete-asks")
    dialog.get_by_role("button", name="Keep the account").click()
    expect(dialog.locator("#delete-form")).to_be_hidden()
    expect(dialog.get_by_role("button", name="Delete account")).to_be_focused()
    dialog.get_by_role("button", name="Close").click()
    alice.send("still here")  # nothing was deleted
    expect(bob.texts()).to_have_text(["goodbye soon", "still here"])
    assert alice.stored() == (True, [alice.user_id])

    dialog = alice.account()
    dialog.get_by_role("button", name="Delete account").click()
    dialog.locator("#delete-password").fill("not the password")
    dialog.get_by_role("button", name="Delete for good").click()
    expect(dialog.locator("#delete-status")).to_have_text("The password is wrong: nothing was deleted.")
    assert alice.stored() == (True, [alice.user_id])
    dialog.locator("#delete-password").fill(PASSWORD)
    dialog.get_by_role("button", name="Delete for good").click()
    expect(page.locator("#signin-status")).to_have_text(
        "The account \u201cAlice\u201d was deleted, and its history in this browser too.")
    expect(page.locator("#saved-profiles")).to_be_hidden()
    assert alice.stored() == (False, [])
    # Her handle signs nobody in any more.
    page.locator("#login-handle").fill(a_handle)
    page.locator("#login-password").fill(PASSWORD)
    page.locator("#login-form").get_by_role("button", name="Sign in").click()
    expect(page.locator("#login-status")).to_contain_text("the handle or the password is wrong")

    # Bob, signing in on a new browser, reads his history: the sender is a deleted account.
    bob2 = people("Bob", register=False).sign_in(b_handle, PASSWORD).live()
    bob2.open(f"d:{alice.user_id}")
    expect(bob2.page.locator("#chat-title")).to_have_text("Deleted account")
    expect(bob2.page.locator("#messages .msg .who")).to_have_text(["Deleted account", "Deleted account"])
    bob2.screenshot(tmp_path, "deleted-account-bob")
