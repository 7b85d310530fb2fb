"""Debian's chromium driven by Playwright, and a person using the web client
in it: shared by the browser tests (tests/e2e/test_web_client.py) and
scripts/screenshot_web_client.py, so both drive the page the same way."""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import List, Optional, Tuple

from playwright.sync_api import Browser, Page, expect

from tests.support.devserver import DevServer

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
TIMEOUT_MS = 10_000  # how long any expectation waits; live delivery takes well under a second
DESKTOP = {"width": 1100, "height": 720}
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def launch(playwright) -> Browser:
    return playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)


class Person:
    """One browser context (its own storage) with the client open and, unless
    `register` is False, a new account registered (with a handle and password
    when given). `device` names this browser among the account's devices."""

    def __init__(self, browser: Browser, server: DevServer, name: str, viewport=DESKTOP, *,
                 handle: Optional[str] = None, password: Optional[str] = None, device: Optional[str] = None,
                 register: bool = True) -> None:
        self.server = server
        self.name = name
        self.context = browser.new_context(viewport=viewport)
        self.context.set_default_timeout(TIMEOUT_MS)
        self.page: Page = self.context.new_page()
        self.errors: List[str] = []
        self.requests: List[str] = []
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.on("console", self._console)
        self.page.on("request", lambda request: self.requests.append(request.url))
        self.page.goto(f"{server.url}/")
        if device is not None:
            self.page.get_by_label("Device name").fill(device)
        if register:
            self.register(handle, password)

    def _console(self, message) -> None:
        """Errors the page logs, but not the browser's own line for an HTTP error answer: the
        API answers 4xx and 5xx by design (and the tests make it), the page shows them."""
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            self.errors.append(f"console: {message.text}")

    def register(self, handle: Optional[str] = None, password: Optional[str] = None) -> None:
        form = self.page.locator("#register-form")
        form.get_by_label("Your name").fill(self.name)
        if handle is not None:
            form.get_by_label("Handle", exact=True).fill(handle)
        if password is not None:
            form.get_by_label(re.compile(r"^Password")).fill(password)
        form.get_by_role("button", name="Register").click()
        self._signed_in(self.name)

    def sign_in(self, handle: str, password: str, name: Optional[str] = None) -> "Person":
        """The Sign in form, as a person with an account types it; `name` is the account's name."""
        form = self.page.locator("#login-form")
        form.get_by_label("Handle", exact=True).fill(handle)
        form.get_by_label("Password", exact=True).fill(password)
        form.get_by_role("button", name="Sign in").click()
        self._signed_in(name or self.name)
        return self

    def link(self, code: str, name: Optional[str] = None) -> "Person":
        """Link this device with a code shown on another."""
        form = self.page.locator("#link-form")
        form.get_by_label("Link code").fill(code)
        form.get_by_role("button", name="Link this device").click()
        self._signed_in(name or self.name)
        return self

    def _signed_in(self, name: str) -> None:
        expect(self.page.locator("#me-id")).to_have_value(UUID)
        self.user_id = self.page.locator("#me-id").input_value()
        expect(self.page.locator("#me-name")).to_have_text(name)

    def live(self, how: str = "WebSocket") -> "Person":
        expect(self.page.locator("#conn-status")).to_have_text(f"Live ({how})")
        return self

    def _new_panel(self) -> None:
        if not self.page.locator("#new-panel").evaluate("panel => panel.open"):
            self.page.locator("#new-panel summary").click()

    def start_direct(self, user_id: str, name: Optional[str], shown: Optional[str] = None) -> None:
        """By user id or handle; `name` is the nickname given (None: none), `shown` the title expected."""
        self._new_panel()
        self.page.get_by_label("Direct chat: their handle or user id").fill(user_id)
        self.page.get_by_label("Nickname").fill(name or "")
        self.page.get_by_role("button", name="Start chat").click()
        expect(self.page.locator("#chat-title")).to_have_text(shown or name or "")

    def create_group(self, name: str) -> str:
        self._new_panel()
        self.page.get_by_label("New group: its name").fill(name)
        self.page.get_by_role("button", name="Create group").click()
        expect(self.page.locator("#chat-title")).to_have_text(name)
        return self.page.locator("#chat-id").input_value()

    def join_group(self, group_id: str, name: str) -> None:
        self._new_panel()
        self.page.get_by_label("Join a group: its group id").fill(group_id)
        self.page.get_by_label("Group name").fill(name)
        self.page.locator("#join-form").get_by_role("button", name="Join group").click()
        expect(self.page.locator("#chat-title")).to_have_text(name)

    def send(self, text: str) -> None:
        """Types and presses Enter, as a person would; waits for the server's acknowledgement."""
        box = self.page.locator("#composer-text")
        box.fill(text)
        box.press("Enter")
        expect(box).to_have_value("")
        expect(self.mine().last).to_have_attribute("data-state", "sent")

    def conversation(self, conv_id: str):
        return self.page.locator(f'#conversation-list [data-conv="{conv_id}"]')

    def open(self, conv_id: str) -> None:
        self.conversation(conv_id).click()
        expect(self.conversation(conv_id)).to_have_attribute("aria-current", "true")

    def texts(self):
        return self.page.locator("#messages .msg .text")

    def mine(self):
        return self.page.locator("#messages .msg.mine")

    def account(self):
        """Opens the Account dialog; answers it."""
        self.page.get_by_role("button", name="Account", exact=True).click()
        dialog = self.page.get_by_role("dialog", name="Account and devices")
        expect(dialog).to_be_visible()
        return dialog

    def profiles(self) -> List[dict]:
        """The profiles this browser keeps (localStorage)."""
        return json.loads(self.page.evaluate("localStorage.getItem('messaging.profiles.v1')") or "[]")

    def profile(self) -> dict:
        """This account's profile in this browser."""
        return next(p for p in self.profiles() if p["user_id"] == self.user_id)

    def token(self) -> Optional[str]:
        """None once this device was signed out."""
        return self.profile()["token"]

    def stored(self) -> Tuple[bool, List[str]]:
        """What this browser keeps: whether this account's history (IndexedDB) is there, and whose profiles."""
        databases = self.page.evaluate("async () => (await indexedDB.databases()).map((d) => d.name)")
        return f"messaging-{self.user_id}" in databases, [p["user_id"] for p in self.profiles()]

    def screenshot(self, tmp_path: Path, name: str) -> Path:
        path = tmp_path / f"{name}.png"
        self.page.screenshot(path=str(path))
        print(f"screenshot: {path}")
        return path

    def close(self) -> None:
        assert self.errors == [], f"{self.name}'s page raised: {self.errors}"
        # Nothing is fetched from anywhere but the app itself.
        assert all(url.startswith(f"{self.server.url}/") for url in self.requests), self.requests
        self.context.close()
