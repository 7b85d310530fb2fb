"""Migrations before new code serves: on a stage that exists, only the
migrate Lambda gets the new package and, as rendered, its environment and
role policy (the migrations of this release may need a setting or a secret
the last one lacked: the app user's secret, APP_DB_SECRET_ARN, readable only
by the new policy); then it is invoked, once, and must succeed. What Chalice
would give the function is computed as Chalice computes it."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, Optional, Sequence, Tuple

from . import aws, proc
from .functions import MIGRATE, function_name, role_name
from .plan import CHALICE_CONFIG, CHALICE_DIR, Context, DeployError, Step, after_failed_migration

# Lambda's limit for a zip uploaded in the request (larger ones go through S3).
MAX_DIRECT_UPLOAD = 50 * 1024 * 1024


def check_package_size(size: int) -> None:
    if size > MAX_DIRECT_UPLOAD:
        raise DeployError(f"deployment.zip is {size // (1024 * 1024)} MiB, over Lambda's "
                          f"{MAX_DIRECT_UPLOAD // (1024 * 1024)} MiB limit for a direct upload")


def migrate_result(payload: bytes, function_error: Optional[str], log_tail: str = "") -> Any:
    """The migrate Lambda's answer, or DeployError when it failed."""
    text = payload.decode("utf-8", "replace")
    if function_error:
        raise DeployError(f"migrate failed ({function_error}): {text}\n{log_tail}".rstrip())
    try:
        return json.loads(text) if text else None
    except ValueError:
        return text


def _stage_config(config_text: str, stage: str) -> Tuple[Dict[str, Any], Dict[str, Any], Dict[str, Any]]:
    config = json.loads(config_text)
    scope = (config.get("stages") or {}).get(stage) or {}
    return config, scope, scope.get("lambda_functions") or {}


def function_environment(config_text: str, stage: str, function: str) -> Dict[str, str]:
    """The environment Chalice gives one function (by its Chalice name, e.g.
    "migrate"): the top level's, the stage's and the function's own entry
    merged in that order (chalice/config.py, _chain_merge)."""
    config, scope, functions = _stage_config(config_text, stage)
    env: Dict[str, str] = {}
    for layer in (config, scope, functions.get(function) or {}):
        env.update(layer.get("environment_variables") or {})
    return env


def function_policy_file(config_text: str, stage: str, function: str) -> str:
    """iam_policy_file as Chalice looks it up for one function (chalice/config.py,
    _chain_lookup): the stage's entry for the function, the stage, the top
    level's entry for the function, the top level; else policy-<stage>.json
    (chalice/deploy/appgraph.py)."""
    config, scope, functions = _stage_config(config_text, stage)
    top_functions = config.get("lambda_functions") or {}
    for layer in (functions.get(function) or {}, scope, top_functions.get(function) or {}, config):
        if layer.get("iam_policy_file") is not None:
            return layer["iam_policy_file"]
    return f"policy-{stage}.json"


# --------------------------------------------------------------------------- acting


def exists(ctx: Context) -> bool:
    """Whether the stage's migrate Lambda exists (the stage was deployed)."""
    return aws.function_exists(aws.client(ctx.session, "lambda", ctx.region),
                               function_name(ctx.app, ctx.stage, MIGRATE))


def update(ctx: Context, zip_path: Path) -> None:
    """The new code, environment and role policy. The policy goes first, so
    that IAM has propagated it by the time the new environment starts fresh
    containers."""
    check_package_size(zip_path.stat().st_size)
    migrate = function_name(ctx.app, ctx.stage, MIGRATE)
    config_text = CHALICE_CONFIG.read_text(encoding="utf-8")
    policy_file = CHALICE_DIR / function_policy_file(config_text, ctx.stage, MIGRATE)
    role = role_name(ctx.app, ctx.stage, MIGRATE)
    aws.put_role_policy(ctx.session, ctx.region, role, json.loads(policy_file.read_text(encoding="utf-8")))
    proc.say(f"{role}: policy {policy_file.name} in place")
    aws.update_code(ctx.session, ctx.region, migrate, zip_path.read_bytes())
    aws.update_environment(ctx.session, ctx.region, migrate,
                           function_environment(config_text, ctx.stage, MIGRATE))
    proc.say(f"{migrate}: new code and environment in place")


def invoke(ctx: Context, steps: Sequence[Step]) -> None:
    """Run the pending migrations; a failure says what now serves."""
    migrate = function_name(ctx.app, ctx.stage, MIGRATE)
    try:
        result = migrate_result(*aws.invoke(ctx.session, ctx.region, migrate))
    except DeployError as exc:
        raise DeployError(f"{exc}\n{after_failed_migration(steps)}") from None
    proc.say(f"{migrate}: {json.dumps(result)}")
