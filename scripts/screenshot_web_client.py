"""Takes docs/web-client.png, the README's picture of the web client: two
people chatting, their two browser windows side by side.

    .venv/bin/python scripts/screenshot_web_client.py [OUTPUT.png]

Needs what the browser tests need (`make test` installs it: playwright, and
Debian's chromium at /usr/bin/chromium). It starts the development server
on a temporary SQLite file, as the tests do, so nothing in data/ is touched.
"""
from __future__ import annotations

import base64
import secrets
import sys
import tempfile
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT))  # for tests.support, when run as a script

from playwright.sync_api import expect, sync_playwright  # noqa: E402

from tests.support.browser import Person, launch  # noqa: E402  (the browser tests' own steps)
from tests.support.devserver import DevServer  # noqa: E402

WINDOW = {"width": 820, "height": 660}


def main(output: Path) -> None:
    with tempfile.TemporaryDirectory() as folder, sync_playwright() as playwright:
        server = DevServer(Path(folder) / "devserver.log", DATABASE_URL=f"sqlite:///{Path(folder) / 'shot.sqlite3'}",
                           AUTH_SECRET=secrets.token_hex(24)).start()
        try:
            browser = launch(playwright)
            shir = Person(browser, server, "Shir", WINDOW).live()
            dan = Person(browser, server, "Dan", WINDOW).live()

            # A group Shir is in but not looking at, so her list shows an unread count.
            group_id = dan.create_group("Climbing club")
            shir.join_group(group_id, "Climbing club")

            shir.start_direct(dan.user_id, "Dan")
            dan.start_direct(shir.user_id, "Shir")
            shir.send("Hi Dan! Are we still on for Saturday?")
            dan.send("Yes, 9:00 at the climbing wall.")
            shir.send("Great, I'll bring the rope.\nAnd coffee.")
            dan.open(f"g:{group_id}")
            dan.send("Who else is coming on Saturday?")
            dan.open(f"d:{shir.user_id}")
            dan.send("Perfect, see you there")
            expect(shir.texts()).to_have_count(4)
            expect(shir.conversation(f"g:{group_id}").locator(".unread")).to_have_text("1")
            for person in (shir, dan):
                person.page.locator("#composer-text").blur()  # no focus ring or hover in the picture
                person.page.mouse.move(0, 0)

            shots = [base64.b64encode(person.page.screenshot()).decode() for person in (shir, dan)]
            # Side by side, composed by the browser itself (no imaging library needed).
            sheet = browser.new_page(viewport={"width": 2 * WINDOW["width"] + 3 * 16, "height": WINDOW["height"] + 60})
            figures = "".join(
                f'<figure><figcaption>{who}\u2019s browser</figcaption>'
                f'<img src="data:image/png;base64,{shot}"></figure>'
                for who, shot in zip(("Shir", "Dan"), shots, strict=True))
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
