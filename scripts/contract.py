#!/usr/bin/env python3
"""Write what chalicelib/contract.py says into the places that show it to
clients and readers:

    messaging_client/contract.py     the Python client's table and limits
    chalicelib/static/contract.js    the web client's, as an ES module
    docs/api.md                      the error table, between markers
    openapi.yaml                     the ErrorCode schema, between markers

    python -m scripts.contract           rewrite them (make contract)
    python -m scripts.contract --check   write nothing; exit 1 naming each stale file

tests/unit/test_contract.py runs the check, so `make test` fails on drift.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable, Dict, List

from chalicelib import contract
from chalicelib.settings import PROJECT_ROOT

SOURCE = "chalicelib/contract.py"
HEADER = f"generated from {SOURCE} by `make contract`; do not edit"


def python_module() -> str:
    codes = ",\n".join(f"    {c.name!r}: ({c.status}, {c.retry!r})" for c in contract.CODES)
    limits = "\n".join(f"{name} = {value}" for name, value in contract.LIMITS.items())
    return (f'"""The API\'s error codes and limits ({HEADER})."""\n\n'
            f"# Code -> (HTTP status, retry: {contract.ALWAYS!r} | {contract.IF_IDEMPOTENT!r} | {contract.NEVER!r})\n"
            f"CODES = {{\n{codes},\n}}\n\n{limits}\n")


def js_module() -> str:
    codes = ",\n".join(f"  {c.name}: {{ status: {c.status}, retry: '{c.retry}' }}" for c in contract.CODES)
    limits = "\n".join(f"export const {name} = {value};" for name, value in contract.LIMITS.items())
    return (f"// The API's error codes and limits ({HEADER}).\n\n"
            f"// Code -> HTTP status and retry: "
            f"'{contract.ALWAYS}' | '{contract.IF_IDEMPOTENT}' | '{contract.NEVER}'.\n"
            f"export const CODES = Object.freeze({{\n{codes},\n}});\n\n{limits}\n")


RETRY_TEXT = {contract.ALWAYS: "yes, after `Retry-After`",
              contract.IF_IDEMPOTENT: "only what is safe to repeat (a read, a send with its key)",
              contract.NEVER: "no"}


def markdown_table() -> str:
    rows = [f"<!-- {HEADER} -->", "| status | Code | when | headers | retry |", "|---|---|---|---|---|"]
    for c in contract.CODES:
        headers = ", ".join(f"`{h}`" for h in c.headers)
        rows.append(f"| {c.status} | `{c.name}` | {c.when} | {headers} | {RETRY_TEXT[c.retry]} |")
    return "\n".join(rows)


def openapi_block() -> str:
    lines = [f"    # {HEADER}", "    ErrorCode:",
             "      description: Every Code the API answers, with its status (x-status) and whether a client",
             "        may retry (x-retry; always, if_idempotent or never).",
             "      type: string",
             f"      enum: [{', '.join(c.name for c in contract.CODES)}]",
             "      x-codes:"]
    lines += [f"        {c.name}: {{x-status: {c.status}, x-retry: {c.retry}}}" for c in contract.CODES]
    return "\n".join(lines)


def between(start: str, end: str, body: Callable[[], str]) -> Callable[[str], str]:
    """Replace what lies between the two marker lines of a file."""

    def rewrite(text: str) -> str:
        head, found, rest = text.partition(start)
        _, found_end, tail = rest.partition(end)
        if not (found and found_end):
            raise SystemExit(f"markers {start!r} and {end!r} not found")
        return f"{head}{start}\n{body()}\n{end}{tail}"

    return rewrite


MD_START = "<!-- error-codes:start -->"
MD_END = "<!-- error-codes:end -->"
YAML_START = "    # error-codes:start"
YAML_END = "    # error-codes:end"

TARGETS: Dict[str, Callable[[str], str]] = {
    "messaging_client/contract.py": lambda _: python_module(),
    "chalicelib/static/contract.js": lambda _: js_module(),
    "docs/api.md": between(MD_START, MD_END, markdown_table),
    "openapi.yaml": between(YAML_START, YAML_END, openapi_block),
}


def changes(root: Path = PROJECT_ROOT) -> Dict[str, str]:
    """{target: the text the contract makes of it} of each target whose text differs."""
    out = {}
    for name, make in TARGETS.items():
        path = root / name
        current = path.read_text(encoding="utf-8") if path.exists() else ""
        text = make(current)
        if text != current:
            out[name] = text
    return out


def stale(root: Path = PROJECT_ROOT) -> List[str]:
    """The targets whose text differs from what the contract makes of them."""
    return list(changes(root))


def write(root: Path = PROJECT_ROOT) -> List[str]:
    written = changes(root)
    for name, text in written.items():
        (root / name).write_text(text, encoding="utf-8")
    return list(written)


def main(argv: List[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.contract", description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if a file is stale")
    args = parser.parse_args(argv)
    if args.check:
        names = stale()
        for name in names:
            print(f"{name} is stale: run make contract", file=sys.stderr)
        return 1 if names else 0
    for name in write():
        print(f"wrote {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

