"""The README's walkthrough runs as written: its shell block, run by bash
against a fresh `make run`-style server, prints exactly the answers the
README shows under each command (`…` standing for ids, tokens and times)."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Iterator, List

import pytest

from tests.support.devserver import DevServer

README = Path(__file__).resolve().parents[2] / "README.md"
README_API = "http://127.0.0.1:8000"
EXPECTED = "# → "


def sh_blocks(first_line: str) -> List[str]:
    """The README's ```sh blocks that start with `first_line`, in order."""
    blocks = re.findall(r"^```sh\n(.*?)^```$", README.read_text(), flags=re.S | re.M)
    return [b for b in blocks if b.startswith(f"{first_line}\n")]


def walkthrough() -> str:
    """The README's ```sh block that sets API=."""
    [block] = sh_blocks(f"API={README_API}")
    return block


def answer_pattern(shown: str) -> re.Pattern:
    """What the README shows as a pattern: `…` is any text without a quote."""
    return re.compile("".join("[^\"]+" if part == "…" else re.escape(part) for part in re.split("(…)", shown)))


def expected_answers(block: str) -> List[re.Pattern]:
    """Each `# → ...` line as a pattern."""
    return [answer_pattern(line[len(EXPECTED):]) for line in block.splitlines() if line.startswith(EXPECTED)]


@pytest.fixture
def fresh_server(tmp_path: Path) -> Iterator[DevServer]:
    server = DevServer(tmp_path / "server.log", DATABASE_URL=f"sqlite:///{tmp_path / 'readme.sqlite3'}").start()
    yield server
    server.stop()


def test_the_readme_walkthrough_prints_what_the_readme_says(fresh_server):
    block = walkthrough()
    patterns = expected_answers(block)
    assert len(patterns) >= 15, "the walkthrough lost its expected answers"
    script = block.replace(README_API, fresh_server.url)
    result = subprocess.run(["bash", "-euo", "pipefail", "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stderr == "", result
    printed = result.stdout.splitlines()
    for number, (line, pattern) in enumerate(zip(printed, patterns), 1):
        assert pattern.fullmatch(line), f"answer {number}:\n  printed  {line}\n  README   {pattern.pattern}"
    assert len(printed) == len(patterns), printed[len(patterns):] or patterns[len(printed):]
