"""The Chalice stage (default `prod`) of .chalice/config.json.

It gets the VPC config (subnet_ids, security_group_ids), the API Gateway
stage (output api_gateway_stage, which the alarms watch: a different
api_gateway_stage already set is refused), the environment (DATABASE_URL
without credentials, REDIS_URL, REDIS_SECRET_ARN, AUTH_SECRET_ARN,
AUTH_MODE, the production rate limits, LONG_POLL_MAX_SECONDS, PUSH_FUNCTION,
FORGET_FUNCTION and, once the WebSocket API's id is known, WEBSOCKET_URL),
autogen_policy false with iam_policy_file, memory and timeout; and under
lambda_functions: each function's database user (roles.py), the API
handler's reserved concurrency (output api_reserved_concurrency), longer
timeout and policy, purge's longer timeout, policy and RETENTION_DAYS
(output retention_days; none when it is 0: every message is kept),
ATTACHMENTS_BUCKET (output attachments_bucket_name) on the API handler and
purge only, the WebSocket handlers' and migrate's policies, and the push function's own policy and
empty VPC config (push runs outside the VPC). Every other key of the stage,
of its lambda_functions and of their environments is kept as it was, so
hand-made settings survive.

The API Gateway stage throttling (outputs api_throttle_* for the REST API,
websocket_throttle_* for the WebSocket API) is not Chalice configuration:
the deploy applies it after `chalice deploy` (throttle.py).
"""
from __future__ import annotations

from typing import Any, Dict, Mapping, Optional

from chalicelib.contract import MAX_WAIT_SECONDS

from ..functions import API_HANDLER, FORGET_CONNECTIONS, MIGRATE, PURGE, PUSH, WEBSOCKET_HANDLERS, function_name
from .outputs import OutputError, dns_suffix
from .roles import ATTACHMENT_ACCESS, ATTACHMENTS_ENV, DB_ENV, database_environment, policy_file_name

# The CA bundle the app verifies Aurora / RDS Proxy against, relative to the
# project root (that is, to /var/task in the Lambda); chalicelib/ is packaged.
DEFAULT_TLS_CA = "chalicelib/certs/rds-ca-bundle.pem"

# Production values recommended by the README; the dev stage leaves them unset.
RATE_LIMITS = {
    "RATE_LIMIT_SENDS_PER_MINUTE": "120",
    "RATE_LIMIT_READS_PER_MINUTE": "600",
    "RATE_LIMIT_REGISTRATIONS_PER_HOUR": "20",
    "RATE_LIMIT_WRITES_PER_MINUTE": "60",  # /block, /create_group, /update_group
    "RATE_LIMIT_TICKETS_PER_MINUTE": "30",  # /connect_ticket, per user
    # Per WebSocket connection: a client pings every 4 minutes, so 20 is far
    # above any honest use; a refused frame still costs its websocket_message
    # invocation (the WebSocket stage throttling bounds those), not a pong.
    "RATE_LIMIT_FRAMES_PER_MINUTE": "20",
}
LAMBDA_MEMORY_MB = 512
LAMBDA_TIMEOUT_S = 10
# The API handler only: a long-poll waits up to LONG_POLL_MAX_SECONDS and then
# reads once more; 25 s fits that under API Gateway's 29 s integration
# timeout, so the client gets the app's answer, not a 504.
API_TIMEOUT_S = 25
LONG_POLL_MAX_SECONDS = str(MAX_WAIT_SECONDS)
# purge only: it starts a batch only while a batch's worth of time is left
# (chalicelib/usecases/retention.py), so a longer run deletes more an hour
# (about a million inbox rows in 60 s) and still ends before Lambda's timeout.
PURGE_TIMEOUT_S = 60

# On purge alone, the only function that reads it: the other functions'
# environments then say nothing they do not use, and a retention change
# touches purge's configuration only. Removed everywhere else, the stage
# included, so that var.retention_days is its one source.
RETENTION_ENV = "RETENTION_DAYS"
# ATTACHMENTS_BUCKET likewise on the functions whose roles reach the bucket
# (roles.ATTACHMENT_ACCESS: the API handler, purge) and nowhere else: unset,
# the app keeps attachments under data/, which a Lambda must never do, so a
# function without the role's access must not believe it has a bucket either.
MANAGED_FUNCTION_ENV = (*DB_ENV, RETENTION_ENV, ATTACHMENTS_ENV)


def websocket_url(out: Mapping[str, Any], api_id: str, api_gateway_stage: str) -> str:
    """Where clients connect (the app hands it out with each connect ticket);
    the app derives the @connections endpoint from it (chalicelib/push.py)."""
    return f"wss://{api_id}.execute-api.{out['region']}.{dns_suffix(out)}/{api_gateway_stage}"


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


def function_environment(out: Mapping[str, Any], function: str) -> Dict[str, str]:
    """What one function's environment holds beyond the stage's: its database
    credentials, for the API handler and purge ATTACHMENTS_BUCKET, and, for
    purge, RETENTION_DAYS (unset is "keep everything"; the app refuses 0,
    hence none at all for retention_days = 0)."""
    env = database_environment(out, function)
    if function in ATTACHMENT_ACCESS:
        env[ATTACHMENTS_ENV] = out["attachments_bucket_name"]
    if function == PURGE and out["retention_days"]:
        env[RETENTION_ENV] = str(out["retention_days"])
    return env


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
    # (forget_connections, any added later): in the VPC, no push, no master
    # secret, no attachments.
    stage["iam_policy_file"] = policy_file_name(stage_name, FORGET_CONNECTIONS)
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
    managed(FORGET_CONNECTIONS)
    managed(PURGE, lambda_timeout=PURGE_TIMEOUT_S, iam_policy_file=policy_file_name(stage_name, PURGE))
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
                           forget_function=function_name(app_name, stage_name, FORGET_CONNECTIONS),
                           websocket=websocket))
    stage["environment_variables"] = env
    return stage
