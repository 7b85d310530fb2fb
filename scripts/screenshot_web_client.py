"""Takes docs/web-client.png, the README's picture of the web client: two
people chatting, their two browser windows side by side.

    .venv/bin/python scripts/screenshot_web_client.py [OUTPUT.png]

Needs what the browser tests need (`make test` installs it: playwright, and
Debian's chromium at /usr/bin/chromium). It starts the development server
on a temporary SQLite file, as the tests do, so nothing in data/ is touched.
"""
from __future__ import annotations

import base64
import re
import secrets
import sys
import tempfile
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT))  # for tests.support, when run as a script

from playwright.sync_api import expect, sync_playwright  # noqa: E402

from tests.support.devserver import DevServer  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
WINDOW = {"width": 820, "height": 660}
UUID = re.compile(r"^[0-9a-f-]{36}$")


def register(browser, url: str, name: str):
    page = browser.new_context(viewport=WINDOW).new_page()
    page.set_default_timeout(10_000)
    page.goto(f"{url}/")
    page.get_by_label("Your name").fill(name)
    page.get_by_role("button", name="Register").click()
    expect(page.locator("#me-id")).to_have_value(UUID)
    expect(page.locator("#conn-status")).to_have_text("Live (WebSocket)")
    return page, page.locator("#me-id").input_value()


def open_panel(page) -> None:
    if not page.locator("#new-panel").evaluate("panel => panel.open"):
        page.locator("#new-panel summary").click()


def start_direct(page, user_id: str, name: str) -> None:
    open_panel(page)
    page.get_by_label("Direct chat: their user id").fill(user_id)
    page.get_by_label("Their name").fill(name)
    page.get_by_role("button", name="Start chat").click()
    expect(page.locator("#chat-title")).to_have_text(name)


def send(page, text: str) -> None:
    box = page.locator("#composer-text")
    box.fill(text)
    box.press("Enter")
    expect(page.locator("#messages .msg.mine").last).to_have_attribute("data-state", "sent")


def main(output: Path) -> None:
    with tempfile.TemporaryDirectory() as folder, sync_playwright() as playwright:
        server = DevServer(Path(folder) / "devserver.log", DATABASE_URL=f"sqlite:///{Path(folder) / 'shot.sqlite3'}",
                           AUTH_SECRET=secrets.token_hex(24)).start()
        try:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            shir, shir_id = register(browser, server.url, "Shir")
            dan, dan_id = register(browser, server.url, "Dan")

            # A group Shir is in but not looking at, so her list shows an unread count.
            open_panel(dan)
            dan.get_by_label("New group: its name").fill("Climbing club")
            dan.get_by_role("button", name="Create group").click()
            expect(dan.locator("#chat-title")).to_have_text("Climbing club")
            group_id = dan.locator("#chat-id").input_value()
            open_panel(shir)
            shir.get_by_label("Join a group: its group id").fill(group_id)
            shir.get_by_label("Group name").fill("Climbing club")
            shir.locator("#join-form").get_by_role("button", name="Join group").click()
            expect(shir.locator("#chat-title")).to_have_text("Climbing club")

            start_direct(shir, dan_id, "Dan")
            start_direct(dan, shir_id, "Shir")
            send(shir, "Hi Dan! Are we still on for Saturday?")
            send(dan, "Yes, 9:00 at the climbing wall.")
            send(shir, "Great, I'll bring the rope.\nAnd coffee.")
            dan.locator("#conversation-list [data-conv^='g:']").click()
            send(dan, "Who else is coming on Saturday?")
            dan.locator(f"#conversation-list [data-conv='d:{shir_id}']").click()
            send(dan, "Perfect, see you there")
            expect(shir.locator("#messages .msg .text")).to_have_count(4)
            expect(shir.locator("#conversation-list [data-conv^='g:'] .unread")).to_have_text("1")
            for page in (shir, dan):
                page.locator("#composer-text").blur()  # no focus ring or hover in the picture
                page.mouse.move(0, 0)

            shots = [base64.b64encode(page.screenshot()).decode() for page in (shir, dan)]
            # Side by side, composed by the browser itself (no imaging library needed).
            sheet = browser.new_page(viewport={"width": 2 * WINDOW["width"] + 3 * 16, "height": WINDOW["height"] + 60})
            figures = "".join(
                f'<figure><figcaption>{who}\u2019s browser</figcaption><img src="data:image/png;base64,{shot}"></figure>'
                for who, shot in zip(("Shir", "Dan"), shots))
            sheet.set_content(
                "<style>body{margin:0;padding:8px 16px 16px;background:#5b6670;display:flex;gap:16px;"
                "font:600 15px system-ui,sans-serif;color:#fff}figure{margin:0}figcaption{padding:6px 2px}"
                "img{display:block;border-radius:6px;box-shadow:0 2px 10px #0006}</style>" + figures)
            output.parent.mkdir(parents=True, exist_ok=True)
            sheet.screenshot(path=str(output), full_page=True)
            browser.close()
        finally:
            server.stop()
    print(f"wrote {output}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else PROJECT_ROOT / "docs" / "web-client.png")
