"""Attachments in the web client, in a real browser as in test_web_client.py:
a picture picked with Attach files and sent from one browser is shown in the
other (loaded, not just an <img>), a PDF is a link with its name and size
whose URL serves its bytes, the upload's progress is shown while it runs, a
file dropped onto the conversation is attached, a send whose upload the
page was reloaded in the middle of uploads its file again and is delivered,
an upload the storage refuses for a while is tried again with a new form,
the server's refusal of a type or of a size is told (and the message can be
discarded), and deleting a message takes its files away on both sides."""
from __future__ import annotations

import base64
import re
import struct
import urllib.error
import urllib.request
import zlib
from typing import Iterator, List

import pytest

from tests.e2e.test_web_client import _server, browser  # noqa: F401 (fixtures)
from tests.support.devserver import DevServer

try:
    from playwright.sync_api import expect

    from tests.support.browser import DESKTOP, Person
except ImportError:  # test_web_client's browser fixture fails clearly
    pass

MAX_BYTES = 100_000  # the test server's MAX_ATTACHMENT_BYTES: a "too large" file stays small
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


def _png(width: int, height: int) -> bytes:
    """A real PNG (red to blue), so the browser decodes it: naturalWidth is its width."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    rows = b"".join(b"\x00" + b"".join(bytes([255 * x // width, 64, 255 - 255 * y // height]) for x in range(width))
                    for y in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[DevServer]:
    yield from _server(tmp_path_factory, "web-attachments", MAX_ATTACHMENT_BYTES=str(MAX_BYTES))


@pytest.fixture
def people(browser, server) -> Iterator:  # noqa: F811 (the imported fixture)
    started: List[Person] = []

    def person(name: str) -> Person:
        started.append(Person(browser, server, name, DESKTOP))
        return started[-1]

    yield person
    for p in started:
        p.close()


def _pair(people):
    """Alice and Bob, live, each with the other's chat open."""
    alice, bob = people("Alice").live(), people("Bob").live()
    alice.start_direct(bob.user_id, "Bob")
    bob.start_direct(alice.user_id, "Alice")
    return alice, bob


def _loaded(person, selector: str) -> None:
    """Until the picture is decoded: an <img> that failed to load has naturalWidth 0."""
    person.page.wait_for_function(
        "(selector) => [...document.querySelectorAll(selector)].some((i) => i.complete && i.naturalWidth > 0)",
        arg=selector)


def _get(server: DevServer, href: str):
    with urllib.request.urlopen(f"{server.url}{href}" if href.startswith("/") else href, timeout=10) as r:
        return r.status, r.headers.get("Content-Type"), r.read()


def test_a_picture_is_shown_in_the_other_browser_and_a_pdf_is_a_link_that_serves_its_bytes(people, server, tmp_path):
    alice, bob = _pair(people)
    picture = _png(40, 30)
    # The Attach files button opens the picker.
    with alice.page.expect_file_chooser() as chooser:
        alice.page.get_by_role("button", name="Attach files").click()
    chooser.value.set_files({"name": "sunset.png", "mimeType": "image/png", "buffer": picture})
    expect(alice.page.locator("#composer-files .file-name")).to_have_text(["sunset.png"])
    alice.send("look at this")
    expect(alice.page.locator("#composer-files")).to_be_hidden()

    message = bob.page.locator("#messages .msg.theirs", has_text="look at this")
    expect(message.locator("img.attachment-image")).to_have_attribute("alt", "sunset.png")
    _loaded(bob, "#messages .msg.theirs img.attachment-image")
    assert message.locator("img").evaluate("i => i.naturalWidth") == 40
    _loaded(alice, "#messages .msg.mine img.attachment-image")  # the sender's own copy too
    expect(message.locator(".file-link")).to_have_text("sunset.png")

    # A PDF, without text: set on the file input itself.
    alice.page.locator("#composer-file").set_input_files(
        {"name": "report.pdf", "mimeType": "application/pdf", "buffer": PDF})
    alice.page.get_by_role("button", name="Send").click()
    expect(alice.mine().last).to_have_attribute("data-state", "sent")
    link = bob.page.locator("#messages .msg.theirs .file-link", has_text="report.pdf")
    expect(link).to_have_attribute("href", re.compile(r"/_files/"))
    expect(bob.page.locator("#messages .msg.theirs").last.locator(".file-size")).to_have_text(f"{len(PDF)} bytes")
    assert bob.page.locator("#messages .msg.theirs").last.locator("img").count() == 0
    status, content_type, body = _get(server, link.get_attribute("href"))
    assert (status, content_type, body) == (200, "application/pdf", PDF)
    expect(bob.conversation(f"d:{alice.user_id}").locator(".conv-last")).to_have_text("File: report.pdf")
    bob.screenshot(tmp_path, "attachments-bob")

    # Deleted: the files go from both pages, and the URL Bob held serves nothing any more.
    picture_href = message.locator(".file-link").get_attribute("href")
    assert _get(server, picture_href)[2] == picture
    alice.page.locator("#messages .msg.mine", has_text="look at this").get_by_role(
        "button", name=re.compile(r"^Delete message")).click()
    alice.page.get_by_role("button", name="Delete for everyone").click()
    expect(alice.page.locator("#messages .msg.mine.deleted")).to_have_count(1)
    expect(alice.page.locator("#messages img")).to_have_count(0)
    expect(bob.page.locator("#messages .msg.theirs.deleted")).to_have_count(1)
    expect(bob.page.locator("#messages img")).to_have_count(0)
    expect(bob.page.locator("#messages .file-link")).to_have_text(["report.pdf"])
    with pytest.raises(urllib.error.HTTPError) as gone:
        _get(server, picture_href)
    assert gone.value.code == 404


def test_the_upload_shows_its_progress_and_a_dropped_file_is_attached(people):
    alice, bob = _pair(people)
    held = []
    alice.page.route("**/_uploads", lambda route: held.append(route))  # held until the progress is seen
    text = b"notes " * 2000
    # Dropped onto the conversation, as a file dragged from the desktop.
    data = alice.page.evaluate_handle(
        """(b64) => {
             const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
             const dt = new DataTransfer();
             dt.items.add(new File([bytes], 'notes.txt', { type: 'text/plain' }));
             return dt;
           }""", base64.b64encode(text).decode())
    alice.page.dispatch_event("#chat-pane", "dragenter", {"dataTransfer": data})
    expect(alice.page.locator("#chat-pane")).to_have_class(re.compile(r"\bdropping\b"))
    alice.page.dispatch_event("#chat-pane", "drop", {"dataTransfer": data})
    expect(alice.page.locator("#chat-pane")).not_to_have_class(re.compile(r"\bdropping\b"))
    expect(alice.page.locator("#composer-files .file-name")).to_have_text(["notes.txt"])
    with alice.page.expect_request("**/_uploads"):
        alice.page.locator("#composer-text").press("Enter")

    sending = alice.mine().last
    expect(sending).to_have_attribute("data-state", "pending")
    expect(sending.locator("progress.upload-progress")).to_be_visible()
    expect(sending.locator(".upload-state")).to_have_text(re.compile(r"^Uploading"))
    assert len(held) == 1
    held[0].continue_()
    alice.page.unroute("**/_uploads")
    expect(sending).to_have_attribute("data-state", "sent")
    expect(sending.locator("progress")).to_have_count(0)
    link = bob.page.locator("#messages .msg.theirs .file-link", has_text="notes.txt")
    expect(link).to_have_attribute("href", re.compile(r"/_files/"))
    assert _get(alice.server, link.get_attribute("href"))[2] == text


def test_a_reload_in_the_middle_of_an_upload_uploads_the_file_again_and_sends_it_once(people):
    alice, bob = _pair(people)
    held = []
    alice.page.route("**/_uploads", lambda route: held.append(route))  # the first upload never finishes
    alice.page.locator("#composer-file").set_input_files(
        {"name": "sunset.png", "mimeType": "image/png", "buffer": _png(20, 20)})
    alice.page.locator("#composer-text").fill("before the reload")
    with alice.page.expect_request("**/_uploads"):
        alice.page.locator("#composer-text").press("Enter")
    expect(alice.mine().last.locator("progress.upload-progress")).to_be_visible()
    assert len(held) == 1
    alice.page.unroute("**/_uploads")
    alice.page.reload()
    # The file was kept with the message: it is uploaded again and the message goes, once.
    expect(alice.mine()).to_have_count(1)
    expect(alice.mine().last).to_have_attribute("data-state", "sent")
    message = bob.page.locator("#messages .msg.theirs", has_text="before the reload")
    expect(message).to_have_count(1)
    _loaded(bob, "#messages .msg.theirs img.attachment-image")


def test_a_type_not_allowed_and_a_file_too_large_are_told_with_the_servers_reason(people):
    alice, bob = _pair(people)
    alice.page.locator("#composer-file").set_input_files(
        {"name": "page.html", "mimeType": "text/html", "buffer": b"<p>hello</p>"})
    alice.page.locator("#composer-text").fill("a page")
    alice.page.locator("#composer-text").press("Enter")
    failed = alice.mine().last
    expect(failed).to_have_attribute("data-state", "failed")
    expect(alice.page.locator("#composer-status")).to_have_text(
        re.compile(r"“page\.html” cannot be sent: content_type: text/html is not a type this server accepts"))
    expect(alice.page.locator("#composer-status")).to_have_class(re.compile(r"\berror\b"))
    expect(failed.locator(".why")).to_have_text(re.compile("text/html is not a type this server accepts"))
    expect(failed.get_by_role("button", name="Retry")).to_have_count(0)  # the same file would be refused again
    failed.get_by_role("button", name="Discard this message").click()
    expect(alice.mine()).to_have_count(0)

    alice.page.locator("#composer-file").set_input_files(
        {"name": "big.pdf", "mimeType": "application/pdf", "buffer": b"%" * (MAX_BYTES + 1)})
    alice.page.get_by_role("button", name="Send").click()
    expect(alice.mine().last).to_have_attribute("data-state", "failed")
    expect(alice.page.locator("#composer-status")).to_have_text(
        re.compile(rf"“big\.pdf” \(98 KB\) is too large to send: size: at most {MAX_BYTES} bytes"))

    alice.mine().last.get_by_role("button", name="Discard this message").click()
    expect(alice.mine()).to_have_count(0)

    # Nothing reached Bob; a message after them does.
    alice.send("only this")
    expect(bob.texts()).to_have_text(["only this"])


def test_an_upload_the_storage_fails_is_tried_again_with_a_new_form_and_the_message_goes_once(people):
    alice, bob = _pair(people)
    uploads = []

    def first_fails(route):
        uploads.append(route.request.url)
        if len(uploads) == 1:
            route.fulfill(status=503, content_type="application/xml",
                          body="<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>")
        else:
            route.continue_()

    forms = []
    alice.page.on("request", lambda request: forms.append(request.url) if request.url.endswith("/upload_url") else None)
    alice.page.route("**/_uploads", first_fails)
    alice.page.locator("#composer-file").set_input_files(
        {"name": "report.pdf", "mimeType": "application/pdf", "buffer": PDF})
    alice.page.get_by_role("button", name="Send").click()
    # Told while it waits, then sent.
    expect(alice.page.locator("#composer-status")).to_have_text(
        re.compile(r"“report\.pdf” is not uploaded: Please reduce your request rate\."))
    expect(alice.mine().last).to_have_attribute("data-state", "sent")
    expect(alice.page.locator("#composer-status")).to_have_text("")
    assert len(uploads) == 2 and len(forms) == 2
    expect(bob.page.locator("#messages .msg.theirs .file-link")).to_have_text(["report.pdf"])


def test_an_upload_the_pages_policy_does_not_allow_is_told_not_retried_forever(people):
    alice, bob = _pair(people)

    def elsewhere(route):
        # As a deployed server whose page policy does not name its bucket: the form points to another origin.
        answer = route.fetch()
        body = answer.json()
        body["upload"]["url"] = "http://storage.invalid/_uploads"
        route.fulfill(response=answer, json=body)

    alice.page.route("**/upload_url", elsewhere)
    alice.page.locator("#composer-file").set_input_files(
        {"name": "report.pdf", "mimeType": "application/pdf", "buffer": PDF})
    alice.page.get_by_role("button", name="Send").click()
    expect(alice.mine().last).to_have_attribute("data-state", "failed")
    expect(alice.page.locator("#composer-status")).to_have_text(re.compile(
        r"“report\.pdf” is not uploaded: this page's Content-Security-Policy \(connect-src\) does not allow uploads"
        r" to http://storage\.invalid"))
    alice.errors.clear()  # the browser logs the refusal itself
    alice.requests[:] = [u for u in alice.requests if "storage.invalid" not in u]
