"""Reading the project's .chalice/config.json and writing the seven files:
config.json with the stage rendered in (stage.py) and the six policies
(policies.py). Output is deterministic (keys in a fixed order, indent 2,
trailing newline): a second run with the same outputs leaves every file
untouched. Nothing is written unless every check passed."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Optional

from ..functions import (
    API_HANDLER,
    FORGET_CONNECTIONS,
    FUNCTIONS,
    MIGRATE,
    PURGE,
    PUSH,
    WEBSOCKET_HANDLERS,
    function_name,
    log_group_name,
)
from .outputs import API_ID_PATTERN, OutputError, load_outputs
from .policies import policy, push_policy, secrets_of
from .roles import ATTACHMENT_ACCESS, ATTACHMENT_KEY_ACCESS, policy_file_name, policy_suffix
from .stage import DEFAULT_TLS_CA, render_stage


def _dump(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def write_if_changed(path: Path, text: str) -> bool:
    """Atomically replace `path` with `text`; False (and no write) when equal."""
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return False
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    return True


def render(outputs_text: str, project_dir: Path, *, stage_name: str = "prod", tls_ca: str = DEFAULT_TLS_CA,
           websocket_api_id: Optional[str] = None) -> Dict[str, bool]:
    """{path: whether it changed} of the seven files; OutputError, and
    nothing written, when the outputs or the project do not fit."""
    out = load_outputs(outputs_text)
    if out["stage"] != stage_name:
        raise OutputError(f"the Terraform stage is {out['stage']!r}, refusing to render it into stage {stage_name!r}")
    if not (project_dir / tls_ca).is_file():
        raise OutputError(f"{tls_ca} is not in {project_dir}: the Lambda could not verify the database certificate")
    if websocket_api_id is not None and not API_ID_PATTERN.match(websocket_api_id):
        raise OutputError(f"--websocket-api-id {websocket_api_id!r} is not an API Gateway id")

    chalice_dir = project_dir / ".chalice"
    config_path = chalice_dir / "config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    app_name = config.get("app_name")
    if not isinstance(app_name, str) or not app_name:
        raise OutputError(f"{config_path} has no app_name")
    names = {f: function_name(app_name, stage_name, f) for f in FUNCTIONS}
    # Terraform made the log groups (and the Lambda endpoint's policy) for
    # "<name_prefix>-<stage>..."; the policies and the environment name
    # "<app_name>-<stage>...". They must be the same.
    made = {API_HANDLER: out["lambda_log_group_name"], MIGRATE: out["migrate_log_group_name"],
            **out["function_log_group_names"]}
    wanted = {f: log_group_name(app_name, stage_name, f) for f in FUNCTIONS}
    if made != wanted or out["push_function_name"] != names[PUSH]:
        raise OutputError(f"Terraform created the log groups {sorted(made.values())} and allows invoking "
                          f"{out['push_function_name']!r}, but the functions are {sorted(names.values())}: "
                          f"name_prefix in infra/ must equal app_name ({app_name!r}) of {config_path}, and "
                          "infra/ must make a group for every function of chalicelib/functions.json (was "
                          "`terraform apply` run since it changed?)")

    stages = config.setdefault("stages", {})
    stages[stage_name] = render_stage(stages.get(stage_name) or {}, out, tls_ca=tls_ca, stage_name=stage_name,
                                      app_name=app_name, websocket_api_id=websocket_api_id)
    api_gateway_stage = stages[stage_name]["api_gateway_stage"]

    def in_vpc(suffix: str, **extra: Any) -> Dict[str, Any]:
        functions: List[str] = [f for f in FUNCTIONS if policy_suffix(f) == suffix]

        def union(access: Dict[str, Any]) -> List[str]:
            return list(dict.fromkeys(a for f in functions for a in access.get(f, ())))

        return policy(out, [names[f] for f in functions], secrets=secrets_of(out, functions),
                      attachments=union(ATTACHMENT_ACCESS), attachment_key=union(ATTACHMENT_KEY_ACCESS), **extra)

    policies = {
        policy_file_name(stage_name, FORGET_CONNECTIONS): in_vpc(""),
        policy_file_name(stage_name, MIGRATE): in_vpc("-migrate"),
        policy_file_name(stage_name, API_HANDLER): in_vpc("-api", push_function=names[PUSH]),
        policy_file_name(stage_name, WEBSOCKET_HANDLERS[0]): in_vpc("-websocket", push_function=names[PUSH]),
        policy_file_name(stage_name, PURGE): in_vpc("-purge"),
        policy_file_name(stage_name, PUSH): push_policy(out, names[PUSH], names[FORGET_CONNECTIONS],
                                                        api_id=websocket_api_id, api_gateway_stage=api_gateway_stage),
    }
    written = {str(chalice_dir / name): write_if_changed(chalice_dir / name, _dump(document))
               for name, document in policies.items()}
    written[str(config_path)] = write_if_changed(config_path, _dump(config))
    return written
