#!/usr/bin/env python3
"""Write the table of infra/ variables (name, type, default, description)
into markdown files, between

    <!-- infra-variables:start -->
    <!-- infra-variables:end -->

    .venv-infra/hcl2/bin/python scripts/infra_variables.py docs/deploy.md
    .venv-infra/hcl2/bin/python scripts/infra_variables.py --check docs/deploy.md

--check writes nothing and exits 1 when a file's table differs from
infra/variables.tf (scripts/check-infra.sh runs it, so CI fails on drift).
Parsing uses python-hcl2, which `make check-infra` installs into
.venv-infra/hcl2 (checkov ships a clashing `hcl2` module, hence its own venv).
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, TypedDict

ROOT = Path(__file__).resolve().parent.parent
VARIABLES = ROOT / "infra" / "variables.tf"
START = "<!-- infra-variables:start -->"
END = "<!-- infra-variables:end -->"
NOTE = ("Generated from `infra/variables.tf` by `scripts/infra_variables.py`; "
        "`make check-infra` fails when this table is out of date.")


class TableError(Exception):
    pass


class Variable(TypedDict):
    """One row of the table: the HCL spelling of each cell; `required` when
    the variable has no default."""
    name: str
    type: str
    default: str
    description: str
    required: bool


# --------------------------------------------------------------------------- HCL values as python-hcl2 returns them

_ESCAPE = re.compile(r'\\(["\\nrt])|\$\$\{|%%\{')
_UNESCAPED = {'"': '"', "\\": "\\", "n": "\n", "r": "\r", "t": "\t"}


def unquote(value: str) -> str:
    """'"a \\"b\\""' (a quoted HCL string, as python-hcl2 keeps it) -> 'a "b"'."""
    if not (isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"'):
        return value
    return _ESCAPE.sub(lambda m: _UNESCAPED[m.group(1)] if m.group(1) else m.group(0)[1:], value[1:-1])


def type_expression(value: str) -> str:
    """'string' stays, '${map(string)}' -> 'map(string)'."""
    return value[2:-1] if value.startswith("${") and value.endswith("}") else value


def hcl_value(value: Any) -> str:
    """A default as it would be written in HCL."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        if value.startswith("${") and value.endswith("}"):
            return value[2:-1]
        return json.dumps(unquote(value), ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(hcl_value(v) for v in value) + "]"
    if isinstance(value, dict):
        items = [(unquote(k), v) for k, v in value.items() if not k.startswith("__")]
        return "{" + ", ".join(f"{k} = {hcl_value(v)}" for k, v in items) + "}" if items else "{}"
    raise TableError(f"unexpected default {value!r}")


def variables_from_hcl(doc: Dict[str, Any]) -> List[Variable]:
    """name, type, default, description of every variable block, in file order."""
    rows: List[Variable] = []
    for block in doc.get("variable", []):
        for name, body in block.items():
            rows.append({
                "name": unquote(name),
                "type": type_expression(body["type"]) if "type" in body else "",
                "default": hcl_value(body["default"]) if "default" in body else "",
                "description": unquote(body.get("description", "")),
                "required": "default" not in body,
            })
    return rows


def load_variables(path: Path = VARIABLES) -> List[Variable]:
    try:
        import hcl2
    except ImportError:
        raise TableError("python-hcl2 is not installed here: run `make check-infra` once, then use "
                         ".venv-infra/hcl2/bin/python scripts/infra_variables.py") from None
    with path.open(encoding="utf-8") as f:
        return variables_from_hcl(hcl2.load(f))


# --------------------------------------------------------------------------- markdown


def _cell(text: str) -> str:
    # One line per row; a "|" would end the cell; "<stage>" would be read as an HTML tag.
    return " ".join(text.split()).replace("|", "\\|").replace("<", "&lt;")


def _code(text: str) -> str:
    return f"`{text.replace('|', chr(92) + '|')}`" if text else ""


def render_table(rows: Sequence[Variable]) -> str:
    lines = [NOTE, "", "| Variable | Type | Default | Description |", "|---|---|---|---|"]
    for row in rows:
        default = _code(row["default"]) if not row.get("required") else "required"
        lines.append(f"| {_code(row['name'])} | {_code(row['type'])} | {default} | {_cell(row['description'])} |")
    return "\n".join(lines) + "\n"


def replace_block(text: str, table: str, *, name: str = "file") -> str:
    """`text` with the markers' content replaced by `table`."""
    if text.count(START) != 1 or text.count(END) != 1 or text.index(START) > text.index(END):
        raise TableError(f"{name}: needs exactly one {START} followed by one {END}")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{table}{END}{tail}"


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="+", type=Path, help="markdown files with the markers")
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a file is out of date")
    parser.add_argument("--variables", type=Path, default=VARIABLES, help="default: infra/variables.tf")
    args = parser.parse_args(argv)
    try:
        table = render_table(load_variables(args.variables))
        stale = []
        for path in args.files:
            text = path.read_text(encoding="utf-8")
            new = replace_block(text, table, name=str(path))
            if new == text:
                print(f"up to date {path}")
            elif args.check:
                stale.append(path)
            else:
                path.write_text(new, encoding="utf-8")
                print(f"wrote {path}")
    except (TableError, OSError) as exc:
        print(f"infra_variables: {exc}", file=sys.stderr)
        return 2
    if stale:
        print("infra_variables: out of date (run .venv-infra/hcl2/bin/python scripts/infra_variables.py "
              + " ".join(map(str, stale)) + "): " + ", ".join(map(str, stale)), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
