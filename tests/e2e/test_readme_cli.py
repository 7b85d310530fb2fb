"""The README's command-line walkthrough runs as written, on the .venv that
`make run` makes: its first terminal (two registrations, then a `watch` that
runs until Ctrl-C) runs in the background, its second terminal runs to the
end, the watch prints both messages, and every command prints what the
README shows beside or under it (`# → `, `…` standing for ids and times)."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import time
import tomllib
from pathlib import Path
from typing import Dict, Iterator, List

import pytest
from packaging.requirements import Requirement

from tests.e2e.test_readme import EXPECTED, answer_pattern, sh_blocks
from tests.support.devserver import DevServer

PROJECT_ROOT = Path(__file__).resolve().parents[2]
ALIAS = "alias m='.venv/bin/python -m messaging_client'"
DEADLINE_SECONDS = 20


def terminals() -> List[str]:
    """The README's two blocks that start with the alias: the watching terminal, then the other."""
    blocks = sh_blocks(ALIAS)
    assert len(blocks) == 2, f"expected the two terminals of the command-line walkthrough, found {len(blocks)}"
    commands = [line for line in blocks[0].splitlines() if line and not line.startswith("#")]
    assert commands[-1].startswith("m --profile dan watch"), "the first terminal ends with the watch"
    return blocks


def expected_lines(block: str) -> List[re.Pattern]:
    """What each command prints: `# → ...` after it on its line, or on lines of their own below it."""
    return [answer_pattern(line.split(EXPECTED, 1)[1]) for line in block.splitlines() if EXPECTED in line]


def bash(script: str) -> List[str]:
    """Bash expanding aliases, as an interactive shell does, and strict: any failure fails the test."""
    return ["bash", "-O", "expand_aliases", "-euo", "pipefail", "-c", script]


def check_printed(printed: List[str], patterns: List[re.Pattern], what: str) -> None:
    for number, (line, pattern) in enumerate(zip(printed, patterns), 1):
        assert pattern.fullmatch(line), f"{what}, line {number}:\n  printed  {line}\n  README   {pattern.pattern}"
    assert len(printed) == len(patterns), (what, printed[len(patterns):] or patterns[len(printed):])


class Terminal:
    """A block running in bash of its own, its output in files, its input typed when asked."""

    def __init__(self, script: str, env: Dict[str, str], folder: Path, name: str) -> None:
        self.out, self.err = folder / f"{name}.out", folder / f"{name}.err"
        with open(self.out, "wb") as out, open(self.err, "wb") as err:
            self.process = subprocess.Popen(bash(script), cwd=PROJECT_ROOT, env=env, stdin=subprocess.PIPE,
                                            stdout=out, stderr=err, start_new_session=True)

    def printed(self) -> List[str]:
        return self.out.read_text().splitlines()

    def errors(self) -> str:
        return self.err.read_text()

    def wait_for(self, text: str) -> None:
        deadline = time.monotonic() + DEADLINE_SECONDS
        while not any(text in line for line in self.printed()):
            assert self.process.poll() is None or any(text in line for line in self.printed()), \
                (f"exited with {self.process.returncode} before printing {text!r}", self.printed(), self.errors())
            assert time.monotonic() < deadline, (f"did not print {text!r}", self.printed(), self.errors())
            time.sleep(0.05)

    def type(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line.encode())
        self.process.stdin.close()

    def finish(self) -> int:
        return self.process.wait(timeout=DEADLINE_SECONDS)

    def interrupt(self) -> int:
        """Ctrl-C: SIGINT to the terminal's process group."""
        os.killpg(self.process.pid, signal.SIGINT)
        return self.finish()

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)


@pytest.fixture
def fresh_server(tmp_path: Path) -> Iterator[DevServer]:
    server = DevServer(tmp_path / "server.log", DATABASE_URL=f"sqlite:///{tmp_path / 'readme-cli.sqlite3'}").start()
    yield server
    server.stop()


def test_the_readmes_command_line_walkthrough_prints_what_the_readme_says(fresh_server, tmp_path):
    watching, other = terminals()
    # The README relies on --api's default (what `make run` serves); this server has a port of its own.
    watching, other = (block.replace(ALIAS, ALIAS[:-1] + f" --api {fresh_server.url}'") for block in (watching, other))
    env: Dict[str, str] = {**os.environ, "MESSAGING_HOME": str(tmp_path / "profiles")}
    first = Terminal(watching, env, tmp_path, "first")
    second = None
    try:
        first.wait_for("watching as dan")
        second = Terminal(other, env, tmp_path, "second")
        second.wait_for("Ctrl-D or /quit ends")  # the chat at the end; /quit waits in the pipe until it reads
        second.type("/quit\n")
        assert second.finish() == 0 and second.errors() == "", (second.printed(), second.errors())
        check_printed(second.printed(), expected_lines(other), "the second terminal")

        first.wait_for("hello_group")
        assert first.interrupt() in (130, -signal.SIGINT), first.errors()
        assert first.errors() == "", "Ctrl-C stops the watch with no traceback"
        check_printed(first.printed(), expected_lines(watching), "the first terminal")
    finally:
        for terminal in (first, second):
            if terminal is not None:
                terminal.kill()


def _requirements(path: Path) -> Dict[str, Requirement]:
    """A requirements file's requirements by name, its `-r` files included."""
    found: Dict[str, Requirement] = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line.startswith("-r "):
            found.update(_requirements(path.parent / line[3:].strip()))
        elif line:
            requirement = Requirement(line)
            found[requirement.name.lower()] = requirement
    return found


def test_make_runs_environment_has_the_clients_dependencies_pinned_as_pyproject_pins_them():
    """The walkthrough runs on `.venv/bin/python` after `make run` alone, whose
    .venv has requirements-local.txt only: without the client's dependencies
    there, its first command fails with ModuleNotFoundError: httpx."""
    local = _requirements(PROJECT_ROOT / "requirements-local.txt")
    client = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert client, "pyproject.toml lists the client's dependencies"
    for line in client:
        wanted = Requirement(line)
        assert wanted.name.lower() in local, f"requirements-local.txt lacks {wanted.name} (pyproject.toml: {line})"
        assert local[wanted.name.lower()].specifier == wanted.specifier, (line, str(local[wanted.name.lower()]))
