"""Before anything changes: the stage name, infra/backend.hcl (the state
holds a secret and must be per stage, encrypted and locked), the region (the
one of the AWS session, which terraform.tfvars must not contradict), the
tools, and who is about to change what: the AWS account, the caller, the
region, the function names and the state location are printed first. The
result is the Context every later step works with."""
from __future__ import annotations

import json
import os
import re
import shutil
import sys
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional

from . import aws
from .functions import EXTRA_FUNCTIONS, MIGRATE, function_name
from .plan import BACKEND_FILE, CHALICE_CONFIG, ROOT, TFVARS_FILE, Context, DeployError
from .render.outputs import REGION_PATTERN, STAGE_PATTERN

_PREFIX = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9._-]+)*$")


def check_stage(stage: str) -> str:
    if not STAGE_PATTERN.match(stage):
        raise DeployError(f"stage {stage!r}: 2-10 lowercase letters or digits, starting with a letter "
                          "(the rule of var.stage in infra/variables.tf)")
    return stage


def app_name(config_text: str) -> str:
    """app_name of .chalice/config.json: the first part of every function name."""
    name = json.loads(config_text).get("app_name")
    if not isinstance(name, str) or not name:
        raise DeployError(".chalice/config.json has no app_name")
    return name


def state_key(prefix: str, stage: str) -> str:
    if not _PREFIX.match(prefix):
        raise DeployError(f"state prefix {prefix!r}: letters, digits, '.', '_', '-', separated by single '/'")
    return f"{prefix}/{check_stage(stage)}/terraform.tfstate"


def _strip_hcl_comments(text: str) -> str:
    return re.sub(r"(?m)^\s*(#|//).*$|\s(#|//)[^\"\n]*$", "", text)


def parse_backend_config(text: str) -> Dict[str, str]:
    """The `name = value` lines of a backend.hcl (flat by definition; values
    unquoted, booleans as "true"/"false")."""
    settings = {}
    for name, value in re.findall(r"(?m)^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.+?)\s*$", _strip_hcl_comments(text)):
        settings[name] = value[1:-1] if len(value) >= 2 and value[0] == value[-1] == '"' else value
    return settings


def backend_problems(settings: Mapping[str, str]) -> List[str]:
    """What makes a backend.hcl unfit: the state holds a secret and must be
    per stage, encrypted and locked."""
    problems = []
    if "key" in settings:
        problems.append("sets `key`: remove it, the deploy sets <prefix>/<stage>/terraform.tfstate per stage")
    for name in ("bucket", "region"):
        if not settings.get(name):
            problems.append(f"has no `{name}`")
    if settings.get("encrypt") != "true":
        problems.append("needs `encrypt = true` (the state holds the ElastiCache AUTH token)")
    if not settings.get("kms_key_id"):
        problems.append("needs `kms_key_id` (SSE-KMS with a key whose policy limits who can read the state)")
    if settings.get("use_lockfile") != "true" and not settings.get("dynamodb_table"):
        problems.append("needs `use_lockfile = true` (or the older `dynamodb_table`): two applies at once "
                        "would corrupt the state")
    return problems


def tfvars_region(text: str) -> Optional[str]:
    """`region = "..."` of a terraform.tfvars, if it sets one."""
    match = re.search(r'(?m)^\s*region\s*=\s*"([^"]*)"', _strip_hcl_comments(text))
    return match.group(1) if match else None


def resolve_region(arg: Optional[str], env: Mapping[str, str], session_region: Optional[str]) -> str:
    """--region, else AWS_REGION / AWS_DEFAULT_REGION, else the profile's."""
    region = arg or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or session_region
    if not region:
        raise DeployError("no AWS region: pass --region, or set AWS_REGION or the profile's region")
    if not REGION_PATTERN.match(region):
        raise DeployError(f"region {region!r} does not look like us-east-1")
    return region


def find_chalice() -> str:
    """The chalice next to this Python (the project's .venv), else on PATH."""
    chalice = Path(sys.executable).parent / "chalice"
    if chalice.is_file():
        return str(chalice)
    found = shutil.which("chalice")
    if not found:
        raise DeployError("chalice is not installed next to this Python (make venv-dev)")
    return found


def prepare(stage: str, region_arg: Optional[str], state_prefix: Optional[str]) -> Context:
    stage = check_stage(stage)
    app = app_name(CHALICE_CONFIG.read_text(encoding="utf-8"))
    if shutil.which("terraform") is None:
        raise DeployError("terraform is not on PATH (Terraform >= 1.11, see infra/versions.tf)")
    if not BACKEND_FILE.is_file():
        raise DeployError(f"{BACKEND_FILE.relative_to(ROOT)} is missing: copy infra/backend.hcl.example and fill it in")
    settings = parse_backend_config(BACKEND_FILE.read_text(encoding="utf-8"))
    problems = backend_problems(settings)
    if problems:
        raise DeployError("infra/backend.hcl " + "; ".join(problems))

    session: Any = aws.new_session()
    region = resolve_region(region_arg, os.environ, session.region_name)
    if TFVARS_FILE.is_file():
        pinned = tfvars_region(TFVARS_FILE.read_text(encoding="utf-8"))
        if pinned and pinned != region:
            raise DeployError(f"infra/terraform.tfvars says region = {pinned!r} but the AWS region is {region!r}: "
                              "set AWS_REGION (or --region) to the stack's region, or fix terraform.tfvars")
    key = state_key(state_prefix or app, stage)

    identity = aws.caller_identity(session, region)
    print(f"AWS account {identity['Account']} as {identity['Arn']}\n"
          f"region      {region}\n"
          f"stage       {stage} (functions {function_name(app, stage)}, {function_name(app, stage, MIGRATE)} "
          f"and {len(EXTRA_FUNCTIONS)} more)\n"
          f"state       s3://{settings['bucket']}/{key}", flush=True)

    env = dict(os.environ, AWS_REGION=region, AWS_DEFAULT_REGION=region)
    return Context(stage, region, app, key, settings["bucket"], session, env, find_chalice())
