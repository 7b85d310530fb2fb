"""Debian's chromium driven by Playwright, and a person using the web client
in it: shared by the browser tests (tests/e2e/test_web_client.py) and
scripts/screenshot_web_client.py, so both drive the page the same way."""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import List

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
    """One browser context (its own storage) with the client open and registered."""

    def __init__(self, browser: Browser, server: DevServer, name: str, viewport=DESKTOP) -> None:
        self.server = server
        self.name = name
        self.context = browser.new_context(viewport=viewport)
        self.context.set_default_timeout(TIMEOUT_MS)
        self.page: Page = self.context.new_page()
        self.errors: List[str] = []
        self.requests: List[str] = []
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.on("request", lambda request: self.requests.append(request.url))
        self.page.goto(f"{server.url}/")
        self.page.get_by_label("Your name").fill(name)
        self.page.get_by_role("button", name="Register").click()
        expect(self.page.locator("#me-id")).to_have_value(UUID)
        self.user_id = self.page.locator("#me-id").input_value()
        expect(self.page.locator("#me-name")).to_have_text(name)

    def live(self, how: str = "WebSocket") -> "Person":
        expect(self.page.locator("#conn-status")).to_have_text(f"Live ({how})")
        return self

    def _new_panel(self) -> None:
        if not self.page.locator("#new-panel").evaluate("panel => panel.open"):
            self.page.locator("#new-panel summary").click()

    def start_direct(self, user_id: str, name: str) -> None:
        self._new_panel()
        self.page.get_by_label("Direct chat: their user id").fill(user_id)
        self.page.get_by_label("Their name").fill(name)
        self.page.get_by_role("button", name="Start chat").click()
        expect(self.page.locator("#chat-title")).to_have_text(name)

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

    def token(self) -> str:
        profiles = json.loads(self.page.evaluate("localStorage.getItem('messaging.profiles.v1')"))
        return next(p["token"] for p in profiles if p["user_id"] == self.user_id)

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
