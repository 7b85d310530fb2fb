"""scripts/infra_variables.py: the table it renders and the block it rewrites,
from values in the shape python-hcl2 returns (python-hcl2 itself lives in
.venv-infra/hcl2; scripts/check-infra.sh runs the script on the real file)."""
from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("infra_variables", ROOT / "scripts" / "infra_variables.py")
iv = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = iv
_spec.loader.exec_module(iv)

# What hcl2.load gives for a few variable blocks (quotes and escapes kept).
DOC = {"variable": [
    {'"region"': {"description": '"AWS region, e.g. us-east-1."', "type": "string", "default": '"us-east-1"',
                  "validation": [{"condition": "${can(regex(\"^x$\", var.region))}"}], "__is_block__": True}},
    {'"tags"': {"description": '"Extra tags."', "type": "${map(string)}", "default": {}, "__is_block__": True}},
    {'"name_prefix"': {"description": '"Keep \\"<name_prefix>-<stage>\\" | short."', "type": "string",
                       "default": '"messaging"'}},
    {'"aurora_min_acu"': {"description": '"ACUs."', "type": "number", "default": 0.5}},
    {'"deletion_protection"': {"description": '"Protect."', "type": "bool", "default": True}},
    {'"azs"': {"description": '"Zones."', "type": "${list(string)}", "default": ['"a"', '"b"']}},
    {'"owner"': {"description": '"Who."', "type": "string"}},
]}


def test_rows_in_file_order_with_hcl_spelling():
    rows = iv.variables_from_hcl(DOC)
    assert [r["name"] for r in rows] == ["region", "tags", "name_prefix", "aurora_min_acu", "deletion_protection",
                                        "azs", "owner"]
    assert [r["type"] for r in rows] == ["string", "map(string)", "string", "number", "bool", "list(string)",
                                        "string"]
    assert [r["default"] for r in rows] == ['"us-east-1"', "{}", '"messaging"', "0.5", "true", '["a", "b"]', ""]
    assert rows[2]["description"] == 'Keep "<name_prefix>-<stage>" | short.'
    assert [r["required"] for r in rows] == [False] * 6 + [True]


def test_table_cells_are_safe_markdown():
    table = iv.render_table(iv.variables_from_hcl(DOC))
    lines = table.splitlines()
    assert lines[0] == iv.NOTE and lines[2] == "| Variable | Type | Default | Description |"
    assert '| `name_prefix` | `string` | `"messaging"` | Keep "&lt;name_prefix>-&lt;stage>" \\| short. |' in lines
    assert "| `owner` | `string` | required | Who. |" in lines
    assert all(len(re.findall(r"(?<!\\)\|", line)) == 5 for line in lines[2:]), "4 cells a row"


def test_unquote_handles_hcl_escapes():
    assert iv.unquote('"a \\"b\\" c\\\\d"') == 'a "b" c\\d'
    assert iv.unquote('"$${literal}"') == "${literal}"
    assert iv.unquote("string") == "string"


def test_replace_block_keeps_everything_around_it():
    text = f"# Doc\n\nbefore\n{iv.START}\nold table\n{iv.END}\nafter\n"
    new = iv.replace_block(text, "| t |\n")
    assert new == f"# Doc\n\nbefore\n{iv.START}\n| t |\n{iv.END}\nafter\n"
    assert iv.replace_block(new, "| t |\n") == new


@pytest.mark.parametrize("text", ["no markers", f"{iv.END}\n{iv.START}\n", f"{iv.START}\n{iv.START}\n{iv.END}\n"])
def test_replace_block_needs_one_pair_of_markers(text):
    with pytest.raises(iv.TableError):
        iv.replace_block(text, "x")


def test_check_mode_reports_a_stale_file(tmp_path, monkeypatch):
    monkeypatch.setattr(iv, "load_variables", lambda path: iv.variables_from_hcl(DOC))
    doc = tmp_path / "doc.md"
    doc.write_text(f"{iv.START}\nstale\n{iv.END}\n")
    assert iv.main(["--check", str(doc)]) == 1
    assert "stale" in doc.read_text()  # --check writes nothing
    assert iv.main([str(doc)]) == 0
    assert iv.main(["--check", str(doc)]) == 0


def test_docs_deploy_md_has_the_markers():
    text = (ROOT / "docs" / "deploy.md").read_text()
    assert text.count(iv.START) == 1 and text.count(iv.END) == 1
