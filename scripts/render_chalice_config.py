#!/usr/bin/env python3
"""Turn the outputs of the infra/ Terraform root into the Chalice `prod` stage.

    terraform -chdir=infra output -json | python3 scripts/render_chalice_config.py -
    python3 scripts/render_chalice_config.py outputs.json [--project-dir DIR]

Writes two files of the project's .chalice directory:

* config.json: the stage (default `prod`) gets the VPC config (subnet_ids,
  security_group_ids), the environment (DATABASE_URL without credentials,
  DB_SECRET_ARN, REDIS_URL, REDIS_SECRET_ARN, AUTH_SECRET_ARN, AUTH_MODE and
  the production rate limits), autogen_policy false with iam_policy_file,
  memory and timeout, and the reserved concurrency of the API handler only
  (lambda_functions.api_handler.reserved_concurrency, from the output
  api_reserved_concurrency). Every other key of the file, of the stage, of
  its lambda_functions and of its environment is kept as it was, so `dev`
  and hand-made settings survive.
* policy-<stage>.json: the Lambdas' least-privilege IAM policy, with the real
  ARNs: the log groups of the API and the migrate function (the two that
  infra/lambda.tf creates), the VPC network interfaces (Resource "*", the only
  one: AWS does not support resource-level permissions for those EC2 actions
  as Lambda uses them), GetSecretValue on exactly the three secrets, and
  kms:Decrypt on the key only through Secrets Manager.

The API Gateway stage throttling (outputs api_throttle_*) is not Chalice
configuration: scripts/deploy.py applies it after `chalice deploy`.

Output is deterministic (keys in a fixed order, indent 2, trailing newline):
a second run with the same outputs leaves both files untouched. Standard
library only.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# The CA bundle the app verifies Aurora / RDS Proxy against, relative to the
# project root (that is, to /var/task in the Lambda); chalicelib/ is packaged.
DEFAULT_TLS_CA = "chalicelib/certs/rds-ca-bundle.pem"

# Production values recommended by the README; the dev stage leaves them unset.
RATE_LIMITS = {
    "RATE_LIMIT_SENDS_PER_MINUTE": "120",
    "RATE_LIMIT_READS_PER_MINUTE": "600",
    "RATE_LIMIT_REGISTRATIONS_PER_HOUR": "20",
    "RATE_LIMIT_WRITES_PER_MINUTE": "60",  # /block, /create_group, /update_group
}
LAMBDA_MEMORY_MB = 512
LAMBDA_TIMEOUT_S = 10

# Chalice's name for the API handler in lambda_functions, and the suffix of
# every other function's name ("<app>-<stage>-<suffix>"): the functions of
# app.py, whose log groups infra/lambda.tf creates.
API_HANDLER = "api_handler"
OTHER_FUNCTIONS = ["migrate"]

# The network-interface actions a VPC Lambda's execution role needs, as in the
# AWS managed policy AWSLambdaVPCAccessExecutionRole.
ENI_ACTIONS = [
    "ec2:CreateNetworkInterface",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSubnets",
    "ec2:DeleteNetworkInterface",
    "ec2:AssignPrivateIpAddresses",
    "ec2:UnassignPrivateIpAddresses",
]

_PARTITION = r"aws(?:-cn|-us-gov|-iso|-iso-b)?"
_HOST = re.compile(r"^(?=.{1,253}$)[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$")
_SUBNET = re.compile(r"^subnet-[0-9a-f]{8,17}$")
_SG = re.compile(r"^sg-[0-9a-f]{8,17}$")
_REGION = re.compile(r"^[a-z]{2}(-gov)?-[a-z]+-[0-9]$")
_DB_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
_STAGE = re.compile(r"^[a-z][a-z0-9]{1,9}$")
_SECRET_ARN = re.compile(rf"^arn:(?P<partition>{_PARTITION}):secretsmanager:(?P<region>[a-z0-9-]+):(?P<account>\d{{12}}):secret:[A-Za-z0-9/_+=.@!-]+$")
_LOG_GROUP = re.compile(r"^/aws/lambda/[A-Za-z0-9_-]{1,64}$")
_KMS_ARN = re.compile(rf"^arn:(?P<partition>{_PARTITION}):kms:(?P<region>[a-z0-9-]+):(?P<account>\d{{12}}):key/(mrk-)?[0-9a-f-]{{32,36}}$")


class OutputError(ValueError):
    """The Terraform outputs are missing something or hold an unexpected value."""


# --------------------------------------------------------------------------- outputs


def _string(pattern: Optional[re.Pattern] = None) -> Callable[[str, Any], str]:
    def check(name: str, value: Any) -> str:
        if not isinstance(value, str) or not value:
            raise OutputError(f"output {name} must be a non-empty string, got {value!r}")
        if pattern is not None and not pattern.match(value):
            raise OutputError(f"output {name} has an unexpected form: {value!r}")
        return value
    return check


def _port(name: str, value: Any) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise OutputError(f"output {name} must be a port number, got {value!r}")
    return value


def _whole(low: int, high: int) -> Callable[[str, Any], int]:
    def check(name: str, value: Any) -> int:
        if isinstance(value, float) and value.is_integer():
            value = int(value)  # JSON numbers from Terraform may arrive as 50.0
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise OutputError(f"output {name} must be a whole number from {low} to {high}, got {value!r}")
        return value
    return check


def _rate(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 10_000:
        raise OutputError(f"output {name} must be a number of requests per second in (0, 10000], got {value!r}")
    return value


def _subnets(name: str, value: Any) -> List[str]:
    if not isinstance(value, list) or len(value) < 2 or len(set(value)) != len(value):
        raise OutputError(f"output {name} must list at least two distinct subnets, got {value!r}")
    return [_string(_SUBNET)(name, v) for v in value]


REQUIRED_OUTPUTS: Dict[str, Callable[[str, Any], Any]] = {
    "region": _string(_REGION),
    "stage": _string(_STAGE),
    "subnet_ids": _subnets,
    "lambda_security_group_id": _string(_SG),
    "db_endpoint": _string(_HOST),
    "db_port": _port,
    "db_name": _string(_DB_NAME),
    "db_secret_arn": _string(_SECRET_ARN),
    "redis_endpoint": _string(_HOST),
    "redis_port": _port,
    "redis_secret_arn": _string(_SECRET_ARN),
    "auth_secret_arn": _string(_SECRET_ARN),
    "kms_key_arn": _string(_KMS_ARN),
    "lambda_log_group_name": _string(_LOG_GROUP),
    "migrate_log_group_name": _string(_LOG_GROUP),
    # The same bounds as the variables' validation in infra/variables.tf.
    "api_throttle_rate_limit": _rate,
    "api_throttle_burst_limit": _whole(1, 5_000),
    "api_reserved_concurrency": _whole(1, 1_000),
}


def load_outputs(text: str) -> Dict[str, Any]:
    """The checked values of `terraform output -json` ({name: {sensitive, type, value}})."""
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise OutputError(f"not JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise OutputError("expected the object printed by `terraform output -json`")
    missing = sorted(set(REQUIRED_OUTPUTS) - set(raw))
    if missing:
        raise OutputError(f"missing outputs: {', '.join(missing)} (was `terraform apply` run in infra/?)")
    values: Dict[str, Any] = {}
    for name, check in REQUIRED_OUTPUTS.items():
        entry = raw[name]
        if not isinstance(entry, dict) or "value" not in entry:
            raise OutputError(f"output {name} is not in the `terraform output -json` shape")
        values[name] = check(name, entry["value"])

    # Every ARN must be of the same account, partition and region as the stack.
    arns = {k: values[k] for k in ("db_secret_arn", "redis_secret_arn", "auth_secret_arn", "kms_key_arn")}
    parsed = {k: (_KMS_ARN if k == "kms_key_arn" else _SECRET_ARN).match(v) for k, v in arns.items()}
    for key in ("partition", "account", "region"):
        seen = {m.group(key) for m in parsed.values()}
        if len(seen) != 1:
            raise OutputError(f"the ARNs disagree on the {key}: {sorted(seen)}")
    values["partition"] = parsed["kms_key_arn"].group("partition")
    values["account_id"] = parsed["kms_key_arn"].group("account")
    if parsed["kms_key_arn"].group("region") != values["region"]:
        raise OutputError(f"the ARNs are in {parsed['kms_key_arn'].group('region')}, output region is {values['region']}")
    if len({arns[k] for k in ("db_secret_arn", "redis_secret_arn", "auth_secret_arn")}) != 3:
        raise OutputError("the three secret ARNs must be distinct")
    return values


# --------------------------------------------------------------------------- what is rendered


def environment(out: Mapping[str, Any], tls_ca: str) -> Dict[str, str]:
    # No credentials in either URL: the app reads them from the secrets.
    return {
        "DATABASE_URL": f"mysql://{out['db_endpoint']}:{out['db_port']}/{out['db_name']}?tls=verify&tls_ca={tls_ca}",
        "DB_SECRET_ARN": out["db_secret_arn"],
        "REDIS_URL": f"rediss://{out['redis_endpoint']}:{out['redis_port']}/0",
        "REDIS_SECRET_ARN": out["redis_secret_arn"],
        "AUTH_SECRET_ARN": out["auth_secret_arn"],
        "AUTH_MODE": "token",
        **RATE_LIMITS,
    }


def _dns_suffix(out: Mapping[str, Any]) -> str:
    return "amazonaws.com.cn" if out["partition"] == "aws-cn" else "amazonaws.com"


def function_names(app_name: str, stage_name: str) -> List[str]:
    """Chalice's function names: "<app>-<stage>" for the API handler (no
    suffix, for backward compatibility), "<app>-<stage>-<name>" for the rest."""
    api = f"{app_name}-{stage_name}"
    return [api] + [f"{api}-{suffix}" for suffix in OTHER_FUNCTIONS]


def policy(out: Mapping[str, Any], functions: List[str]) -> Dict[str, Any]:
    """Least privilege for the Lambdas named `functions`: with autogen_policy
    false Chalice gives each function its own role, all with this one file."""
    prefix = f"arn:{out['partition']}:logs:{out['region']}:{out['account_id']}:log-group:/aws/lambda/"
    # Each group and its streams, by exact name: no "<app>-<stage>-*", which
    # would also match functions (and log groups) this stack does not make.
    log_resources = [arn for name in functions for arn in (f"{prefix}{name}", f"{prefix}{name}:*")]
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "WriteOwnLogs",
                "Effect": "Allow",
                "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
                "Resource": log_resources,
            },
            {
                # AWS requires "*" here: these EC2 actions, as Lambda calls them
                # to attach the function to its subnets, take no resource ARN.
                "Sid": "VpcNetworkInterfaces",
                "Effect": "Allow",
                "Action": list(ENI_ACTIONS),
                "Resource": "*",
            },
            {
                "Sid": "ReadAppSecrets",
                "Effect": "Allow",
                "Action": "secretsmanager:GetSecretValue",
                "Resource": [out["db_secret_arn"], out["redis_secret_arn"], out["auth_secret_arn"]],
            },
            {
                "Sid": "DecryptAppSecretsViaSecretsManager",
                "Effect": "Allow",
                "Action": "kms:Decrypt",
                "Resource": out["kms_key_arn"],
                "Condition": {"StringEquals": {"kms:ViaService": f"secretsmanager.{out['region']}.{_dns_suffix(out)}"}},
            },
        ],
    }


def render_stage(existing: Mapping[str, Any], out: Mapping[str, Any], *, tls_ca: str,
                 policy_file: str) -> Dict[str, Any]:
    stage = dict(existing)
    stage.setdefault("api_gateway_stage", "api")
    stage["autogen_policy"] = False
    stage["iam_policy_file"] = policy_file
    stage["subnet_ids"] = list(out["subnet_ids"])
    stage["security_group_ids"] = [out["lambda_security_group_id"]]
    stage["lambda_memory_size"] = LAMBDA_MEMORY_MB
    stage["lambda_timeout"] = LAMBDA_TIMEOUT_S
    # The API handler only: a stage-level value (what --reserved-concurrency
    # used to write) would reserve as much again for the migrate function.
    stage.pop("reserved_concurrency", None)
    functions = dict(existing.get("lambda_functions") or {})
    api_handler = dict(functions.get(API_HANDLER) or {})
    api_handler["reserved_concurrency"] = out["api_reserved_concurrency"]
    functions[API_HANDLER] = api_handler
    stage["lambda_functions"] = functions
    env = dict(existing.get("environment_variables") or {})
    env.update(environment(out, tls_ca))
    stage["environment_variables"] = env
    return stage


# --------------------------------------------------------------------------- files


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
           check_ca: bool = True) -> Dict[str, bool]:
    out = load_outputs(outputs_text)
    if out["stage"] != stage_name:
        raise OutputError(f"the Terraform stage is {out['stage']!r}, refusing to render it into stage {stage_name!r}")
    if check_ca and not (project_dir / tls_ca).is_file():
        raise OutputError(f"{tls_ca} is not in {project_dir}: the Lambda could not verify the database certificate")

    chalice_dir = project_dir / ".chalice"
    config_path = chalice_dir / "config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    app_name = config.get("app_name")
    if not isinstance(app_name, str) or not app_name:
        raise OutputError(f"{config_path} has no app_name")
    policy_file = f"policy-{stage_name}.json"
    functions = function_names(app_name, stage_name)
    # Terraform made the log groups for "<name_prefix>-<stage>"; the policy
    # grants the ones of "<app_name>-<stage>". They must be the same.
    made = [out["lambda_log_group_name"], out["migrate_log_group_name"]]
    if made != [f"/aws/lambda/{name}" for name in functions]:
        raise OutputError(f"Terraform created the log groups {made} but the functions are {functions}: "
                          f"name_prefix in infra/ must equal app_name ({app_name!r}) of {config_path}")

    stages = config.setdefault("stages", {})
    stages[stage_name] = render_stage(stages.get(stage_name) or {}, out, tls_ca=tls_ca, policy_file=policy_file)
    return {
        str(chalice_dir / policy_file): write_if_changed(chalice_dir / policy_file,
                                                         _dump(policy(out, functions))),
        str(config_path): write_if_changed(config_path, _dump(config)),
    }


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("outputs", help="file with the output of `terraform output -json`, or - for stdin")
    parser.add_argument("--project-dir", type=Path, default=PROJECT_ROOT,
                        help="Chalice project whose .chalice/ is written (default: this repository)")
    parser.add_argument("--stage", default="prod", help="Chalice stage to write (default: prod)")
    parser.add_argument("--tls-ca", default=DEFAULT_TLS_CA,
                        help=f"CA bundle path relative to the project, for DATABASE_URL (default: {DEFAULT_TLS_CA})")
    args = parser.parse_args(argv)

    text = sys.stdin.read() if args.outputs == "-" else Path(args.outputs).read_text(encoding="utf-8")
    try:
        written = render(text, args.project_dir.resolve(), stage_name=args.stage, tls_ca=args.tls_ca)
    except OutputError as exc:
        print(f"render_chalice_config: {exc}", file=sys.stderr)
        return 1
    for path, changed in written.items():
        print(f"{'wrote' if changed else 'unchanged'} {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
