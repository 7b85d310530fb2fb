"""chalice deploy (the new code serves), and what it records in
.chalice/deployed/<stage>.json: the ids of the REST API (throttle.py) and
of the WebSocket API (websocket.py, and throttle.py for its stage). Without
a kill timeout (proc.py)."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, List, Optional

from . import proc
from .plan import CHALICE_DEPLOYED, ROOT, Context, DeployError
from .render.outputs import API_ID_PATTERN

URL_TIMEOUT = 60  # seconds
BYTECODE = "scripts.deploy.bytecode"  # chalice whose zips carry compiled bytecode (bytecode.py)
PACKAGING = ("package", "deploy")


def chalice_command(chalice: str, command: str, stage: str, *extra: str) -> List[str]:
    """`chalice <command>` of the project's stage; package and deploy
    through bytecode.py, by the Python of that chalice (run in the project
    root, as proc.run does), so that the zip they build ships .pyc."""
    head = [python_of(chalice), "-m", BYTECODE] if command in PACKAGING else [chalice]
    return [*head, "--project-dir", str(ROOT), command, "--stage", stage, *extra]


def python_of(chalice: str) -> str:
    """The python beside the chalice executable (a virtualenv's; pipx's
    behind its link), else this one."""
    beside = Path(chalice).resolve().parent / "python"
    return str(beside) if beside.is_file() else sys.executable


def deployed_ids(deployed_text: str, kind: str) -> List[Any]:
    """The `<kind>_id` values of the resources named and typed `kind` in
    .chalice/deployed/<stage>.json (schema 2.0: {"resources": [{"name":
    kind, "resource_type": kind, "<kind>_id": ..., "<kind>_url": ...}, ...]},
    chalice/deploy/planner.py's RecordResourceVariable steps)."""
    try:
        data = json.loads(deployed_text)
    except ValueError as exc:
        raise DeployError(f"the Chalice deployed file is not JSON: {exc}") from None
    if not isinstance(data, dict) or data.get("schema_version") != "2.0":
        raise DeployError("the Chalice deployed file is not of schema_version 2.0")
    return [r.get(f"{kind}_id") for r in data.get("resources") or []
            if isinstance(r, dict) and r.get("resource_type") == kind and r.get("name") == kind]


def is_api_id(value: Any) -> bool:
    return isinstance(value, str) and API_ID_PATTERN.match(value) is not None


# --------------------------------------------------------------------------- acting


def deployed_text(ctx: Context) -> Optional[str]:
    deployed = CHALICE_DEPLOYED / f"{ctx.stage}.json"
    return deployed.read_text(encoding="utf-8") if deployed.is_file() else None


def deploy(ctx: Context) -> None:
    proc.run(chalice_command(ctx.chalice, "deploy", ctx.stage), timeout=None, env=ctx.env)


def url(ctx: Context) -> str:
    return proc.run(chalice_command(ctx.chalice, "url", ctx.stage), timeout=URL_TIMEOUT, env=ctx.env,
                    capture=True).strip()
