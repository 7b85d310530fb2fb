#!/usr/bin/env python3
"""Turn the outputs of the infra/ Terraform root into the Chalice `prod` stage.

    terraform -chdir=infra output -json | python3 scripts/render_chalice_config.py -
    python3 scripts/render_chalice_config.py outputs.json [--project-dir DIR]

    ... --websocket-api-id a1b2c3d4e5   (scripts/deploy.py, once Chalice made it)

Writes five files of the project's .chalice directory:

* config.json: the stage (default `prod`) gets the VPC config (subnet_ids,
  security_group_ids), the API Gateway stage (output api_gateway_stage, which
  the alarms watch: a different api_gateway_stage already set is refused),
  the environment (DATABASE_URL without credentials, REDIS_URL,
  REDIS_SECRET_ARN, AUTH_SECRET_ARN, AUTH_MODE, the production rate limits,
  LONG_POLL_MAX_SECONDS, PUSH_FUNCTION, FORGET_FUNCTION and, with
  --websocket-api-id, WEBSOCKET_URL), autogen_policy false with
  iam_policy_file, memory and timeout; and under lambda_functions: the
  database user each function connects as (DB_SECRET_ARN: the app user's
  secret, DML only, for the API handler, the WebSocket handlers,
  forget_connections and purge; the RDS master secret for migrate, with
  APP_DB_SECRET_ARN, the app user's secret, so that it can create that user;
  none for push, which has no database), the API handler's reserved
  concurrency (output api_reserved_concurrency), longer timeout and policy,
  purge's longer timeout and RETENTION_DAYS (output retention_days; none
  when it is 0: every message is kept), the WebSocket handlers' and
  migrate's policies, and the push function's own policy and empty VPC
  config (push runs outside the VPC). Every other key of the file, of the
  stage, of its lambda_functions and of their environments is kept as it
  was, so `dev` and hand-made settings survive.
* four least-privilege IAM policies with the real ARNs (with autogen_policy
  false Chalice gives every function a role of its own, made from the file
  its iam_policy_file names):
  - policy-<stage>.json, the stage's default (forget_connections, purge and
    any function added later): its functions' log groups, the VPC network
    interfaces (Resource "*", the only one: AWS does not support
    resource-level permissions for those EC2 actions as Lambda uses them),
    GetSecretValue on the app user's, the Redis and the signing secrets
    (never the master secret), kms:Decrypt on the key only through Secrets
    Manager;
  - policy-<stage>-migrate.json (migrate): the same, but of the secrets only
    the two database ones, the master's and the app user's;
  - policy-<stage>-api.json (the API handler, the WebSocket handlers): the
    same as the default for their log groups, plus invoking the push function;
  - policy-<stage>-push.json (push, outside the VPC): its log group,
    ManageConnections (POST, GET, DELETE) on the @connections of the stage's
    WebSocket API, invoking forget_connections. Before the first `chalice
    deploy` the API's id is unknown: without --websocket-api-id there is no
    WEBSOCKET_URL (the app offers no push) and no ManageConnections at all,
    and scripts/deploy.py renders again and redeploys once Chalice recorded
    the id.

The API Gateway stage throttling (outputs api_throttle_*) is not Chalice
configuration: scripts/deploy.py applies it after `chalice deploy`.

Output is deterministic (keys in a fixed order, indent 2, trailing newline):
a second run with the same outputs leaves every file untouched. Standard
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
# The API handler only: a long-poll waits up to LONG_POLL_MAX_SECONDS and then
# reads once more; 25 s fits that under API Gateway's 29 s integration
# timeout, so the client gets the app's answer, not a 504.
API_TIMEOUT_S = 25
LONG_POLL_MAX_SECONDS = "20"
# purge only: it starts a batch only while a batch's worth of time is left
# (chalicelib/usecases/retention.py), so a longer run deletes more an hour
# (about a million inbox rows in 60 s) and still ends before Lambda's timeout.
PURGE_TIMEOUT_S = 60

# Chalice's names for the functions in lambda_functions, and the suffix of
# every function's name but the API handler's ("<app>-<stage>-<suffix>"):
# the @app.lambda_function's and the @app.schedule of app.py and the
# WebSocket handlers as chalice/deploy/appgraph.py names them. infra/lambda.tf
# makes their log groups.
API_HANDLER = "api_handler"
MIGRATE = "migrate"
PUSH = "push"
FORGET = "forget_connections"
PURGE = "purge"
WEBSOCKET_HANDLERS = ["websocket_connect", "websocket_message", "websocket_disconnect"]
FUNCTIONS = [API_HANDLER, MIGRATE, *WEBSOCKET_HANDLERS, FORGET, PUSH, PURGE]
# The functions infra/lambda.tf makes groups for through the output
# function_log_group_names (the API's and migrate's have outputs of their own);
# scripts/deploy.py imports those Lambda made before Terraform managed them.
EXTRA_FUNCTIONS = sorted([PUSH, FORGET, *WEBSOCKET_HANDLERS, PURGE])

# Which policy file each function's role is made from (suffix of
# "policy-<stage>"). "" is the stage's own iam_policy_file, so a function
# added later gets the in-VPC policy without the right to push or the master
# secret, and its missing log group shows in `make check-infra`.
POLICY_OF = {API_HANDLER: "-api", **{h: "-api" for h in WEBSOCKET_HANDLERS}, PUSH: "-push", MIGRATE: "-migrate",
             FORGET: "", PURGE: ""}
# The database user of each function, by the secret its DB_SECRET_ARN names:
# the app user (DML only) for everything that serves and for purge (SELECT
# and DELETE), the master user for migrate alone, none for push (outside the
# VPC, no database). Per function (lambda_functions.<name>.environment_variables,
# which Chalice merges over the stage's: chalice/config.py, _chain_merge),
# never stage-wide: a function added later then has no database credentials
# rather than the master's.
DB_USER_OF = {API_HANDLER: "app", **{h: "app" for h in WEBSOCKET_HANDLERS}, FORGET: "app", PURGE: "app",
              MIGRATE: "master", PUSH: None}
DB_ENV = ("DB_SECRET_ARN", "APP_DB_SECRET_ARN")
# On purge alone, the only function that reads it: the other functions'
# environments then say nothing they do not use, and a retention change
# touches purge's configuration only. Removed everywhere else, the stage
# included, so that var.retention_days is its one source.
RETENTION_ENV = "RETENTION_DAYS"
MANAGED_FUNCTION_ENV = (*DB_ENV, RETENTION_ENV)
# What the @connections management API is called with (boto3
# apigatewaymanagementapi: PostToConnection, GetConnection, DeleteConnection).
CONNECTION_METHODS = ["POST", "GET", "DELETE"]

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
_FUNCTION = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
# API Gateway ids: lowercase letters and digits (10 of them in practice).
_API_ID = re.compile(r"^[a-z0-9]{1,32}$")
# API Gateway stage names (var.api_gateway_stage in infra/variables.tf).
_API_STAGE = re.compile(r"^[A-Za-z0-9_-]{1,128}$")


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


def _log_groups(name: str, value: Any) -> Dict[str, str]:
    if not isinstance(value, dict) or not value:
        raise OutputError(f"output {name} must map function names to log groups, got {value!r}")
    return {k: _string(_LOG_GROUP)(f"{name}.{k}", v) for k, v in value.items()}


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
    "db_app_secret_arn": _string(_SECRET_ARN),
    "redis_endpoint": _string(_HOST),
    "redis_port": _port,
    "redis_secret_arn": _string(_SECRET_ARN),
    "auth_secret_arn": _string(_SECRET_ARN),
    "kms_key_arn": _string(_KMS_ARN),
    "lambda_log_group_name": _string(_LOG_GROUP),
    "migrate_log_group_name": _string(_LOG_GROUP),
    "function_log_group_names": _log_groups,
    "push_function_name": _string(_FUNCTION),
    "api_gateway_stage": _string(_API_STAGE),
    # The same bounds as the variables' validation in infra/variables.tf.
    "api_throttle_rate_limit": _rate,
    "api_throttle_burst_limit": _whole(1, 5_000),
    "api_reserved_concurrency": _whole(1, 1_000),
    "retention_days": _whole(0, 36_500),  # 0: keep every message
}


SECRET_OUTPUTS = ("db_secret_arn", "db_app_secret_arn", "redis_secret_arn", "auth_secret_arn")


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
    arns = {k: values[k] for k in (*SECRET_OUTPUTS, "kms_key_arn")}
    parsed = {k: (_KMS_ARN if k == "kms_key_arn" else _SECRET_ARN).match(v) for k, v in arns.items()}
    for key in ("partition", "account", "region"):
        seen = {m.group(key) for m in parsed.values()}
        if len(seen) != 1:
            raise OutputError(f"the ARNs disagree on the {key}: {sorted(seen)}")
    values["partition"] = parsed["kms_key_arn"].group("partition")
    values["account_id"] = parsed["kms_key_arn"].group("account")
    if parsed["kms_key_arn"].group("region") != values["region"]:
        raise OutputError(f"the ARNs are in {parsed['kms_key_arn'].group('region')}, output region is {values['region']}")
    if len({arns[k] for k in SECRET_OUTPUTS}) != len(SECRET_OUTPUTS):
        raise OutputError(f"the {len(SECRET_OUTPUTS)} secret ARNs must be distinct")
    return values


# --------------------------------------------------------------------------- what is rendered


def _dns_suffix(out: Mapping[str, Any]) -> str:
    return "amazonaws.com.cn" if out["partition"] == "aws-cn" else "amazonaws.com"


def function_name(app_name: str, stage_name: str, function: str) -> str:
    """Chalice's function names: "<app>-<stage>" for the API handler (no
    suffix, for backward compatibility), "<app>-<stage>-<name>" for the rest."""
    api = f"{app_name}-{stage_name}"
    return api if function == API_HANDLER else f"{api}-{function}"


def websocket_url(out: Mapping[str, Any], api_id: str, api_gateway_stage: str) -> str:
    """Where clients connect (the app hands it out with each connect ticket);
    the app derives the @connections endpoint from it (chalicelib/push.py)."""
    return f"wss://{api_id}.execute-api.{out['region']}.{_dns_suffix(out)}/{api_gateway_stage}"


def environment(out: Mapping[str, Any], tls_ca: str, *, push_function: str, forget_function: str,
                websocket: Optional[str]) -> Dict[str, str]:
    # No credentials in either URL: the app reads them from the secrets (the
    # database's per function: function_environment).
    env = {
        "DATABASE_URL": f"mysql://{out['db_endpoint']}:{out['db_port']}/{out['db_name']}?tls=verify&tls_ca={tls_ca}",
        "REDIS_URL": f"rediss://{out['redis_endpoint']}:{out['redis_port']}/0",
        "REDIS_SECRET_ARN": out["redis_secret_arn"],
        "AUTH_SECRET_ARN": out["auth_secret_arn"],
        "AUTH_MODE": "token",
        **RATE_LIMITS,
        "LONG_POLL_MAX_SECONDS": LONG_POLL_MAX_SECONDS,
        # The API's VPC has no way out to @connections: it invokes push
        # (asynchronously, through the Lambda endpoint), which posts and hands
        # the connections found gone to forget_connections (beside Redis).
        "PUSH_FUNCTION": push_function,
        "FORGET_FUNCTION": forget_function,
    }
    if websocket:
        env["WEBSOCKET_URL"] = websocket
    return env


def database_environment(out: Mapping[str, Any], function: str) -> Dict[str, str]:
    """The database credentials of one function (DB_USER_OF)."""
    user = DB_USER_OF[function]
    if user == "master":
        return {"DB_SECRET_ARN": out["db_secret_arn"], "APP_DB_SECRET_ARN": out["db_app_secret_arn"]}
    if user == "app":
        return {"DB_SECRET_ARN": out["db_app_secret_arn"]}
    return {}


def function_environment(out: Mapping[str, Any], function: str) -> Dict[str, str]:
    """What one function's environment holds beyond the stage's: its database
    credentials and, for purge, RETENTION_DAYS (unset is "keep everything";
    the app refuses 0, hence none at all for retention_days = 0)."""
    env = database_environment(out, function)
    if function == PURGE and out["retention_days"]:
        env[RETENTION_ENV] = str(out["retention_days"])
    return env


def secrets_of(out: Mapping[str, Any], functions: List[str]) -> List[str]:
    """The secrets the functions sharing one policy read: the database secrets
    their DB_SECRET_ARN / APP_DB_SECRET_ARN name, and Redis' and the signing
    secrets for all but migrate (which reads only the database ones)."""
    arns: List[str] = []
    for function in functions:
        wanted = list(database_environment(out, function).values())
        if function != MIGRATE:
            wanted += [out["redis_secret_arn"], out["auth_secret_arn"]]
        arns += [arn for arn in wanted if arn not in arns]
    return arns


def _lambda_arn(out: Mapping[str, Any], name: str) -> str:
    return f"arn:{out['partition']}:lambda:{out['region']}:{out['account_id']}:function:{name}"


def _log_statement(out: Mapping[str, Any], functions: List[str]) -> Dict[str, Any]:
    prefix = f"arn:{out['partition']}:logs:{out['region']}:{out['account_id']}:log-group:/aws/lambda/"
    # Each group and its streams, by exact name: no "<app>-<stage>-*", which
    # would also match functions (and log groups) this stack does not make.
    return {
        "Sid": "WriteOwnLogs",
        "Effect": "Allow",
        "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
        "Resource": [arn for name in functions for arn in (f"{prefix}{name}", f"{prefix}{name}:*")],
    }


def _invoke_statement(sid: str, out: Mapping[str, Any], name: str) -> Dict[str, Any]:
    # The function and its qualified forms (":*": versions, aliases; Chalice
    # publishes none): the pair the Lambda guide's endpoint policy example
    # says an Invoke needs, as in the endpoint's policy (infra/network.tf).
    arn = _lambda_arn(out, name)
    return {"Sid": sid, "Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": [arn, f"{arn}:*"]}


def policy(out: Mapping[str, Any], functions: List[str], *, secrets: List[str],
           push_function: Optional[str] = None) -> Dict[str, Any]:
    """Least privilege for the in-VPC Lambdas named `functions` (each gets a
    role of its own made from this file): reading exactly `secrets`; with
    push_function, the right to invoke it (the API and the WebSocket handlers
    hand it their posts)."""
    statements = [
        _log_statement(out, functions),
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
            "Resource": list(secrets),
        },
        {
            "Sid": "DecryptAppSecretsViaSecretsManager",
            "Effect": "Allow",
            "Action": "kms:Decrypt",
            "Resource": out["kms_key_arn"],
            "Condition": {"StringEquals": {"kms:ViaService": f"secretsmanager.{out['region']}.{_dns_suffix(out)}"}},
        },
    ]
    if push_function:
        statements.append(_invoke_statement("InvokePush", out, push_function))
    return {"Version": "2012-10-17", "Statement": statements}


def push_policy(out: Mapping[str, Any], push_function: str, forget_function: str, *, api_id: Optional[str],
                api_gateway_stage: str) -> Dict[str, Any]:
    """The push function's (outside the VPC): post to the connections of this
    stage's WebSocket API only, have forget_connections drop the gone ones,
    write its log group. No secrets, no network interfaces."""
    statements = [_log_statement(out, [push_function])]
    if api_id:
        # arn:...:execute-api:<region>:<account>:<api-id>/<stage>/<method>/@connections/<connection-id>
        # (API Gateway developer guide, "Control access to WebSocket APIs with IAM authorization").
        api = f"arn:{out['partition']}:execute-api:{out['region']}:{out['account_id']}:{api_id}/{api_gateway_stage}"
        statements.append({
            "Sid": "ManageOwnConnections",
            "Effect": "Allow",
            "Action": "execute-api:ManageConnections",
            "Resource": [f"{api}/{method}/@connections/*" for method in CONNECTION_METHODS],
        })
    statements.append(_invoke_statement("InvokeForgetConnections", out, forget_function))
    return {"Version": "2012-10-17", "Statement": statements}


def policy_file_name(stage_name: str, function: str) -> str:
    return f"policy-{stage_name}{POLICY_OF[function]}.json"


def render_stage(existing: Mapping[str, Any], out: Mapping[str, Any], *, tls_ca: str, stage_name: str,
                 app_name: str, websocket_api_id: Optional[str]) -> Dict[str, Any]:
    stage = dict(existing)
    # The stage the API Gateway alarm and widgets watch (infra/monitoring.tf):
    # set it where none is, refuse another one (they would watch nothing).
    stage.setdefault("api_gateway_stage", out["api_gateway_stage"])
    if stage["api_gateway_stage"] != out["api_gateway_stage"]:
        raise OutputError(f"the Chalice stage has api_gateway_stage {stage['api_gateway_stage']!r} but Terraform's "
                          f"alarms watch {out['api_gateway_stage']!r}: set api_gateway_stage = "
                          f"\"{stage['api_gateway_stage']}\" in infra/ (terraform.tfvars) and apply")
    stage["autogen_policy"] = False
    # The default for every function without one of its own
    # (forget_connections, purge, any added later): in the VPC, no push, no
    # master secret.
    stage["iam_policy_file"] = policy_file_name(stage_name, FORGET)
    stage["subnet_ids"] = list(out["subnet_ids"])
    stage["security_group_ids"] = [out["lambda_security_group_id"]]
    stage["lambda_memory_size"] = LAMBDA_MEMORY_MB
    stage["lambda_timeout"] = LAMBDA_TIMEOUT_S
    # The API handler only: a stage-level value (what --reserved-concurrency
    # used to write) would reserve as much again for every other function.
    stage.pop("reserved_concurrency", None)

    functions = dict(existing.get("lambda_functions") or {})

    def managed(name: str, **settings: Any) -> None:
        # Chalice looks each setting up per function first, then per stage
        # (chalice/config.py, _chain_lookup): these win over the stage's.
        # The environment is merged instead (_chain_merge: top level, stage,
        # function), so the function's own holds only what differs: its
        # database credentials (and purge's retention), beside any hand-made
        # variable.
        entry = dict(functions.get(name) or {})
        entry.update(settings)
        env = {k: v for k, v in (entry.get("environment_variables") or {}).items() if k not in MANAGED_FUNCTION_ENV}
        env.update(function_environment(out, name))
        if env:
            entry["environment_variables"] = env
        else:
            entry.pop("environment_variables", None)
        functions[name] = entry

    managed(API_HANDLER, reserved_concurrency=out["api_reserved_concurrency"], lambda_timeout=API_TIMEOUT_S,
            iam_policy_file=policy_file_name(stage_name, API_HANDLER))
    for handler in WEBSOCKET_HANDLERS:
        managed(handler, iam_policy_file=policy_file_name(stage_name, handler))
    managed(MIGRATE, iam_policy_file=policy_file_name(stage_name, MIGRATE))
    managed(FORGET)
    managed(PURGE, lambda_timeout=PURGE_TIMEOUT_S)
    # Outside the VPC: empty lists are "not None" to _chain_lookup, so they
    # replace the stage's subnets and groups, and the appgraph then builds the
    # function without a VpcConfig (both empty; one without the other is an error).
    managed(PUSH, subnet_ids=[], security_group_ids=[], iam_policy_file=policy_file_name(stage_name, PUSH))
    stage["lambda_functions"] = functions

    env = dict(existing.get("environment_variables") or {})
    env.pop("WEBSOCKET_URL", None)  # managed: present only while the WebSocket API's id is known
    # Per function: stage-wide, push would get the master's secret and every
    # function purge's retention (a hand-made one would outlive retention_days = 0).
    for name in MANAGED_FUNCTION_ENV:
        env.pop(name, None)
    websocket = websocket_url(out, websocket_api_id, stage["api_gateway_stage"]) if websocket_api_id else None
    env.update(environment(out, tls_ca, push_function=function_name(app_name, stage_name, PUSH),
                           forget_function=function_name(app_name, stage_name, FORGET), websocket=websocket))
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
           check_ca: bool = True, websocket_api_id: Optional[str] = None) -> Dict[str, bool]:
    out = load_outputs(outputs_text)
    if out["stage"] != stage_name:
        raise OutputError(f"the Terraform stage is {out['stage']!r}, refusing to render it into stage {stage_name!r}")
    if check_ca and not (project_dir / tls_ca).is_file():
        raise OutputError(f"{tls_ca} is not in {project_dir}: the Lambda could not verify the database certificate")
    if websocket_api_id is not None and not _API_ID.match(websocket_api_id):
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
    wanted = {f: f"/aws/lambda/{name}" for f, name in names.items()}
    if made != wanted or out["push_function_name"] != names[PUSH]:
        raise OutputError(f"Terraform created the log groups {sorted(made.values())} and allows invoking "
                          f"{out['push_function_name']!r}, but the functions are {sorted(names.values())}: "
                          f"name_prefix in infra/ must equal app_name ({app_name!r}) of {config_path}, and "
                          "infra/lambda.tf must make a group for every function")

    stages = config.setdefault("stages", {})
    stages[stage_name] = render_stage(stages.get(stage_name) or {}, out, tls_ca=tls_ca, stage_name=stage_name,
                                      app_name=app_name, websocket_api_id=websocket_api_id)
    api_gateway_stage = stages[stage_name]["api_gateway_stage"]

    def in_vpc(suffix: str, **extra: Any) -> Dict[str, Any]:
        functions = [f for f in FUNCTIONS if POLICY_OF[f] == suffix]
        return policy(out, [names[f] for f in functions], secrets=secrets_of(out, functions), **extra)

    policies = {
        policy_file_name(stage_name, FORGET): in_vpc(""),
        policy_file_name(stage_name, MIGRATE): in_vpc("-migrate"),
        policy_file_name(stage_name, API_HANDLER): in_vpc("-api", push_function=names[PUSH]),
        policy_file_name(stage_name, PUSH): push_policy(out, names[PUSH], names[FORGET], api_id=websocket_api_id,
                                                        api_gateway_stage=api_gateway_stage),
    }
    written = {str(chalice_dir / name): write_if_changed(chalice_dir / name, _dump(document))
               for name, document in policies.items()}
    written[str(config_path)] = write_if_changed(config_path, _dump(config))
    return written


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("outputs", help="file with the output of `terraform output -json`, or - for stdin")
    parser.add_argument("--project-dir", type=Path, default=PROJECT_ROOT,
                        help="Chalice project whose .chalice/ is written (default: this repository)")
    parser.add_argument("--stage", default="prod", help="Chalice stage to write (default: prod)")
    parser.add_argument("--tls-ca", default=DEFAULT_TLS_CA,
                        help=f"CA bundle path relative to the project, for DATABASE_URL (default: {DEFAULT_TLS_CA})")
    parser.add_argument("--websocket-api-id",
                        help="id of the stage's WebSocket API (Chalice records it in .chalice/deployed/<stage>.json "
                             "after the first deploy); without it there is no WEBSOCKET_URL and no push")
    args = parser.parse_args(argv)

    text = sys.stdin.read() if args.outputs == "-" else Path(args.outputs).read_text(encoding="utf-8")
    try:
        written = render(text, args.project_dir.resolve(), stage_name=args.stage, tls_ca=args.tls_ca,
                         websocket_api_id=args.websocket_api_id)
    except OutputError as exc:
        print(f"render_chalice_config: {exc}", file=sys.stderr)
        return 1
    if not args.websocket_api_id:
        print("render_chalice_config: no --websocket-api-id: WEBSOCKET_URL is not set, so the app offers no push "
              "(scripts/deploy.py passes the id once Chalice has made the WebSocket API)", file=sys.stderr)
    for path, changed in written.items():
        print(f"{'wrote' if changed else 'unchanged'} {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
