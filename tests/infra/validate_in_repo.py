"""scripts/tfschema/tfvalidate.py with its copies of a root kept in place.

tfvalidate.py validates a copy of a Terraform root made alone (copy_root),
but infra/ reads one file from beside itself: ../chalicelib/functions.json,
the functions' names (local.functions in infra/locals.tf). This runs the
tool with every copy given that file at the same place relative to it, so
that `terraform validate` evaluates what the real root evaluates:

    .venv-infra/terraform/bin/python tests/infra/validate_in_repo.py validate [...] DIR...

(scripts/check-infra.sh step c, tests/infra/test_terraform_validate.py).
"""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# What infra/*.tf read from outside infra/, relative to the repository root.
BESIDE = ["chalicelib/functions.json"]

sys.path.insert(0, str(ROOT / "scripts" / "tfschema"))
import tfvalidate  # noqa: E402

_copy_root = tfvalidate.copy_root


def copy_root(src: Path, dest: Path) -> None:
    _copy_root(src, dest)
    for path in BESIDE:  # dest stands where infra/ does; its parent for the repository root
        (dest.parent / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ROOT / path, dest.parent / path)


tfvalidate.copy_root = copy_root

if __name__ == "__main__":
    sys.exit(tfvalidate.main(sys.argv[1:]))
