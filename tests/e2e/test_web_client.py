"""The web client (chalicelib/static/) in a real browser: Debian's chromium,
driven by Playwright, against `make run`'s development server over real
sockets. Two browser contexts are two people: direct and group chats
delivered live over the WebSocket and over the long-poll fallback, unread
counts, history across a reload, blocking, a send retried after a network
error delivered once, retries as chalicelib/contract.py allows them (a 503
or a gateway's 504 is retried, a 500 is not), forgetting a profile only once
confirmed, and a phone-sized screen. Screenshots go to the test's tmp_path
(their paths are printed: `pytest -s` shows them)."""
from __future__ import annotations

import json
import re
import urllib.request
from typing import Iterator, List

import pytest

from tests.support.devserver import DevServer

try:
    from playwright.sync_api import Browser, expect, sync_playwright

    from tests.support.browser import CHROMIUM, DESKTOP, UUID, Person, launch
except ImportError:  # a clear failure below, never a silent skip
    sync_playwright = None

AUTH_SECRET = "web-client-test-secret-0123456789abcdef"
PHONE = {"width": 375, "height": 700}


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

    def person(name: str, on: DevServer = server, viewport=DESKTOP) -> Person:
        started.append(Person(browser, on, name, viewport))
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
    expect(bob.page.locator("#messages .msg .who")).to_have_text([f"User {alice.user_id[:8]}", "You"])
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
    keys: List[str] = []

    def lose_the_answer(route):
        keys.append(route.request.headers.get("idempotency-key"))
        if len(keys) == 1:
            route.fetch()          # the server stores and delivers it...
            route.abort("failed")  # ...and the browser sees a network error
        else:
            route.continue_()

    alice.page.route("**/send", lose_the_answer)
    alice.page.locator("#composer-text").fill("exactly once")
    alice.page.locator("#composer-text").press("Enter")
    expect(alice.mine().last).to_have_attribute("data-state", "sent")
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
            if len(sockets) == 1 and not dropped:
                dropped.append(frame)  # the first frame is lost on the way
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

    answers: List[int] = []

    def limited_once(route):
        answers.append(429 if not answers else 201)
        if answers[-1] == 429:
            route.fulfill(status=429, headers={"Retry-After": "1"}, content_type="application/json",
                          body='{"Code":"RateLimited","Message":"too many sends"}')
        else:
            route.continue_()

    alice.page.route("**/send", limited_once)
    box.fill("after the limit")
    box.press("Enter")
    expect(status).to_contain_text("Too many requests: the server asks to wait 1 s")
    expect(alice.mine().last).to_have_attribute("data-state", "sent")
    assert answers == [429, 201]
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


def _answer(route, status: int, code: str, message: str, **headers: str) -> None:
    """Answers the intercepted request with the API's error envelope."""
    route.fulfill(status=status, headers=headers, content_type="application/json",
                  body=json.dumps({"Code": code, "Message": message}))


def test_a_send_answered_500_is_marked_failed_not_retried_and_its_retry_button_sends_it_under_its_key(people):
    alice, bob = people("Alice").live(), people("Bob").live()
    alice.start_direct(bob.user_id, "Bob")
    box, status = alice.page.locator("#composer-text"), alice.page.locator("#composer-status")
    keys: List[str] = []

    def broken_once(route):
        keys.append(route.request.headers.get("idempotency-key"))
        if len(keys) == 1:
            _answer(route, 500, "InternalServerError", "internal error, request id test-500")
        else:
            route.continue_()

    alice.page.route("**/send", broken_once)
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
    keys: List[str] = []

    def unavailable_then_timed_out(route):
        keys.append(route.request.headers.get("idempotency-key"))
        if len(keys) == 1:
            _answer(route, 503, "ServiceUnavailable", "the database cannot be reached", **{"Retry-After": "1"})
        elif len(keys) == 2:  # API Gateway's own answer: no envelope
            route.fulfill(status=504, content_type="application/json", body='{"message": "Endpoint request timed out"}')
        else:
            route.continue_()

    alice.page.route("**/send", unavailable_then_timed_out)
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
    reads: List[str] = []

    def unavailable_then_broken(route):
        reads.append(route.request.url)
        if len(reads) == 1:
            _answer(route, 503, "ServiceUnavailable", "the database cannot be reached", **{"Retry-After": "1"})
        elif len(reads) == 2:
            _answer(route, 500, "InternalServerError", "internal error, request id test-500")
        else:
            route.continue_()

    bob.page.route("**/read_messages", unavailable_then_broken)
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
    database = f"messaging-{alice.user_id}"

    def stored():
        databases = page.evaluate("async () => (await indexedDB.databases()).map((d) => d.name)")
        profiles = json.loads(page.evaluate("localStorage.getItem('messaging.profiles.v1')") or "[]")
        return database in databases, [p["user_id"] for p in profiles]

    page.get_by_role("button", name="Sign out").click()
    page.get_by_role("button", name="Forget Alice", exact=True).click()
    expect(page.get_by_role("button", name="Yes, forget Alice")).to_be_visible()
    expect(page.get_by_role("button", name="Keep Alice")).to_be_focused()
    alice.screenshot(tmp_path, "forget-asks-alice")
    assert stored() == (True, [alice.user_id])
    # Leaving the question unanswered deletes nothing either.
    page.reload()
    expect(page.get_by_role("button", name="Continue as Alice")).to_be_visible()
    page.get_by_role("button", name="Forget Alice", exact=True).click()
    page.get_by_role("button", name="Keep Alice").click()
    expect(page.get_by_role("button", name="Forget Alice", exact=True)).to_be_focused()
    assert stored() == (True, [alice.user_id])

    page.get_by_role("button", name="Forget Alice", exact=True).click()
    page.get_by_role("button", name="Yes, forget Alice").click()
    expect(page.locator("#saved-profiles")).to_be_hidden()
    assert stored() == (False, [])


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
