#!/usr/bin/env python3
"""Deploy, destroy or run Terraform for one stage of the cloud side
(`make deploy STAGE=x`, `make destroy STAGE=x`; docs/deploy.md).

    deploy.py deploy  --stage prod [--region us-east-1] [--state-prefix messaging]
    deploy.py destroy --stage prod [...]
    deploy.py tf      --stage prod [...] -- apply -var deletion_protection=false

Every command first shows the AWS account, caller and region it is about to
change, and points infra/ at the stage's own state
(s3://<bucket from infra/backend.hcl>/<prefix>/<stage>/terraform.tfstate).

deploy: terraform apply (Terraform asks for approval itself; a function's log
group that Lambda made before Terraform managed it is imported first), render
the Chalice stage from the outputs, then apply migrations before new code
serves, and set the API Gateway stage throttling from the outputs right after
chalice deploy (Chalice has no setting for it):
  * the stage exists (its migrate Lambda does): chalice package, put the new
    package, environment and role policy (as rendered) into the migrate
    Lambda only, wait, invoke it, chalice deploy, throttle, websocket;
  * first deploy: chalice deploy, throttle, websocket, then invoke migrate.
websocket: the WebSocket API's id is known only once Chalice made the API
(it records it in .chalice/deployed/<stage>.json); the render passes the id it
finds there, and after chalice deploy the step renders again with the id
Chalice recorded and, only if that is a new id (the first deploy with push),
runs chalice deploy once more so WEBSOCKET_URL and the push function's
@connections permission reach the functions.
destroy: refuses while Aurora deletion protection is on, asks for the stage
name, chalice delete, then terraform destroy (which asks again).
tf: any terraform command against the stage's state, with -var stage/region
added to the commands that take variables.

Every AWS call has connect/read timeouts (botocore Config). Terraform apply /
destroy and chalice deploy / delete run without a kill timeout on purpose:
killing them half-way leaves a held state lock or a half-made deployment;
their AWS calls time out on their own.
"""
from __future__ import annotations

import argparse
import base64
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

ROOT = Path(__file__).resolve().parent.parent
INFRA = ROOT / "infra"
BACKEND_FILE = INFRA / "backend.hcl"
TFVARS_FILE = INFRA / "terraform.tfvars"
CHALICE_CONFIG = ROOT / ".chalice" / "config.json"
CHALICE_DEPLOYED = ROOT / ".chalice" / "deployed"  # <stage>.json, written by chalice deploy
RENDER = ROOT / "scripts" / "render_chalice_config.py"

# The renderer's names and rules (function names, stage, region, API ids,
# the outputs' bounds), so that the two scripts cannot drift apart. scripts/
# is on the path when this runs as a script, not when loaded by file (tests).
sys.path.insert(0, str(RENDER.parent))
import render_chalice_config as render  # noqa: E402

MIGRATE = render.MIGRATE  # @app.lambda_function(name="migrate") in app.py
MIGRATE_LOG_GROUP = "aws_cloudwatch_log_group.migrate"  # infra/lambda.tf
# The other functions Chalice deploys besides the API handler: push and
# forget_connections (app.py), the WebSocket handlers as Chalice names them,
# and the scheduled purge (local.extra_functions in infra/locals.tf).
EXTRA_FUNCTIONS = render.EXTRA_FUNCTIONS
FUNCTIONS = [MIGRATE, *EXTRA_FUNCTIONS]
# Each function's log group in infra/lambda.tf, by Terraform address; the
# API's has always been Terraform's, so it is never imported.
LOG_GROUP_ADDRESSES = {MIGRATE: MIGRATE_LOG_GROUP,
                       **{f: f'aws_cloudwatch_log_group.function["{f}"]' for f in EXTRA_FUNCTIONS}}
DEFAULT_API_GATEWAY_STAGE = "api"  # Chalice's default api_gateway_stage

# The stage-wide method settings key ("*/*": every resource and method) in
# the JSON-pointer form UpdateStage patches take.
THROTTLE_PATHS = ("/*/*/throttling/rateLimit", "/*/*/throttling/burstLimit")

# Same rule as var.stage in infra/variables.tf.
_STAGE = render._STAGE
_PREFIX = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9._-]+)*$")
_REGION = render._REGION

# Seconds. Subprocesses that are safe to kill get a timeout; see the docstring.
INIT_TIMEOUT = 900
OUTPUT_TIMEOUT = 300
PACKAGE_TIMEOUT = 900
URL_TIMEOUT = 60
AWS_CONNECT_TIMEOUT = 10
AWS_READ_TIMEOUT = 60
UPLOAD_READ_TIMEOUT = 300
# The Lambda maximum is 900 s; the read must outlast the function.
INVOKE_READ_TIMEOUT = 910
WAIT_DELAY, WAIT_ATTEMPTS = 5, 120  # function_updated_v2: up to 10 minutes

# Lambda's limit for a zip uploaded in the request (larger ones go through S3).
MAX_DIRECT_UPLOAD = 50 * 1024 * 1024

# Terraform commands that accept -var.
VAR_COMMANDS = {"plan", "apply", "destroy", "refresh", "import", "console"}


class DeployError(Exception):
    """A precondition or a step failed; the message says what to do."""


# --------------------------------------------------------------------------- pure logic


def check_stage(stage: str) -> str:
    if not _STAGE.match(stage):
        raise DeployError(f"stage {stage!r}: 2-10 lowercase letters or digits, starting with a letter "
                          "(the rule of var.stage in infra/variables.tf)")
    return stage


def app_name(config_text: str) -> str:
    """app_name of .chalice/config.json: the first part of every function name."""
    name = json.loads(config_text).get("app_name")
    if not isinstance(name, str) or not name:
        raise DeployError(".chalice/config.json has no app_name")
    return name


def function_name(app: str, stage: str, function: Optional[str] = None) -> str:
    """Chalice's names (the renderer's): "<app>-<stage>" for the API handler
    (no function), "<app>-<stage>-<function>" for the rest."""
    return render.function_name(app, stage, function or render.API_HANDLER)


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
    if not _REGION.match(region):
        raise DeployError(f"region {region!r} does not look like us-east-1")
    return region


def init_command(backend_file: Path, key: str) -> List[str]:
    # -reconfigure: take this stage's key even when .terraform/ still points
    # at another stage's (and never offer to copy that state over).
    return ["terraform", f"-chdir={INFRA}", "init", "-input=false", "-reconfigure",
            f"-backend-config={backend_file}", f"-backend-config=key={key}"]


def terraform_command(args: Sequence[str], stage: str, region: str) -> List[str]:
    """`terraform <args>` in infra/, with the stage and region as variables
    for the commands that take them (so they always match the state key and
    the region shown)."""
    if not args:
        raise DeployError("no terraform command given (e.g. `-- plan`)")
    command, rest = args[0], list(args[1:])
    extra = ["-var", f"stage={stage}", "-var", f"region={region}"] if command in VAR_COMMANDS else []
    return ["terraform", f"-chdir={INFRA}", command, *extra, *rest]


@dataclass(frozen=True)
class Step:
    name: str
    what: str


PACKAGE = Step("package", "chalice package: build the new deployment.zip")
UPDATE_MIGRATE = Step("update_migrate", "put the new role policy, package and environment into the migrate "
                                          "Lambda only, and wait")
INVOKE_MIGRATE = Step("invoke_migrate", "invoke migrate: apply pending migrations")
CHALICE_DEPLOY = Step("chalice_deploy", "chalice deploy: the new code serves")
THROTTLE = Step("throttle", "API Gateway stage throttling (rate, burst) from the Terraform outputs")
WEBSOCKET = Step("websocket", "WEBSOCKET_URL and the push policy from the WebSocket API id Chalice recorded; "
                              "chalice deploy once more only if that id is new (first deploy with push)")


def plan_code_steps(migrate_exists: bool) -> List[Step]:
    """Migrations run before new code serves. On a first deploy there is no
    migrate function (and no old code) yet, so Chalice creates it first.
    Throttling follows chalice deploy at once: the stage exists only from
    then on (first deploy), and Chalice has just recorded its REST API id.
    The WebSocket step needs the id Chalice records in that same deploy."""
    if migrate_exists:
        return [PACKAGE, UPDATE_MIGRATE, INVOKE_MIGRATE, CHALICE_DEPLOY, THROTTLE, WEBSOCKET]
    return [CHALICE_DEPLOY, THROTTLE, WEBSOCKET, INVOKE_MIGRATE]


def after_failed_migration(steps: Sequence[Step]) -> str:
    """What serves when the migrate step failed, for the error message."""
    if steps.index(INVOKE_MIGRATE) < steps.index(CHALICE_DEPLOY):
        return "chalice deploy did not run: the old code still serves. Fix the migration and deploy again."
    return ("first deploy: the code is deployed but its schema is not applied. "
            "Fix the migration and deploy again.")


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


def api_throttle(outputs_text: str) -> Tuple[float, int]:
    """(rate, burst) of the outputs api_throttle_rate_limit / _burst_limit,
    checked by the renderer's rules (the bounds of their variables)."""
    names = ("api_throttle_rate_limit", "api_throttle_burst_limit")
    try:
        outputs = json.loads(outputs_text)
        values = [outputs[name]["value"] for name in names]
    except (ValueError, KeyError, TypeError):
        raise DeployError("`terraform output -json` has no api_throttle_rate_limit / api_throttle_burst_limit "
                          "(did the apply finish?)") from None
    try:
        rate, burst = (render.REQUIRED_OUTPUTS[name](name, value) for name, value in zip(names, values))
    except render.OutputError as exc:
        raise DeployError(str(exc)) from None
    return rate, burst


def _number_text(value: float) -> str:
    # Patch values are strings; "100", not "100.0", for a whole rate.
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def throttle_patch_operations(rate: float, burst: int) -> List[Dict[str, str]]:
    """UpdateStage patch operations that set the stage's default throttling
    (every method of the stage; per-method overrides would win, none are made)."""
    return [
        {"op": "replace", "path": THROTTLE_PATHS[0], "value": _number_text(rate)},
        {"op": "replace", "path": THROTTLE_PATHS[1], "value": str(int(burst))},
    ]


def _deployed_ids(deployed_text: str, kind: str) -> List[Any]:
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


def _api_id(value: Any) -> bool:
    return isinstance(value, str) and render._API_ID.match(value) is not None


def rest_api_id(deployed_text: str) -> str:
    """The REST API id Chalice recorded in .chalice/deployed/<stage>.json."""
    ids = _deployed_ids(deployed_text, "rest_api")
    if len(ids) != 1 or not _api_id(ids[0]):
        raise DeployError(f"the Chalice deployed file has no single rest_api with a rest_api_id (found {ids})")
    return ids[0]


def websocket_api_id(deployed_text: Optional[str]) -> Optional[str]:
    """The WebSocket API id Chalice recorded ({"name": "websocket_api",
    "resource_type": "websocket_api", "websocket_api_id": ...,
    "websocket_api_url": "wss://<id>.execute-api.<region>.<suffix>/<stage>/"});
    None before Chalice made one (no file yet, or a stage deployed before
    the app had WebSocket handlers)."""
    if deployed_text is None:
        return None
    ids = _deployed_ids(deployed_text, "websocket_api")
    if not ids:
        return None
    if len(ids) != 1 or not _api_id(ids[0]):
        raise DeployError(f"the Chalice deployed file has no single websocket_api with a websocket_api_id "
                          f"(found {ids})")
    return ids[0]


def render_command(stage: str, websocket_id: Optional[str]) -> List[str]:
    """The renderer, reading `terraform output -json` on stdin; with the
    WebSocket API id once it is known (WEBSOCKET_URL, the push policy)."""
    cmd = [sys.executable, str(RENDER), "-", "--stage", stage]
    return cmd + ["--websocket-api-id", websocket_id] if websocket_id else cmd


def redeploy_for_websocket(rendered_with: Optional[str], recorded: Optional[str]) -> bool:
    """After chalice deploy: deploy again only when Chalice recorded a
    WebSocket API id the functions were not rendered with (the first deploy
    with push, or an API Chalice had to make anew); the same id again means
    the same files, so no second deploy."""
    return recorded is not None and recorded != rendered_with


def api_gateway_stage(config_text: str, stage: str) -> str:
    """api_gateway_stage as Chalice looks it up: the stage's, the top-level
    one, else Chalice's default "api"."""
    config = json.loads(config_text)
    for scope in ((config.get("stages") or {}).get(stage) or {}, config):
        name = scope.get("api_gateway_stage")
        if name:
            return name
    return DEFAULT_API_GATEWAY_STAGE


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


def role_name(app: str, stage: str, function: str) -> str:
    """The role Chalice makes for a function when autogen_policy is false (as
    the renderer sets it): "<app>-<stage>-<function>", whose one inline
    policy has the role's name (chalice/deploy/appgraph.py, planner.py)."""
    return f"{app}-{stage}-{function}"


def log_group_name(app: str, stage: str, function: Optional[str] = None) -> str:
    return f"/aws/lambda/{function_name(app, stage, function)}"


def parse_state_list(returncode: int, stdout: str, stderr: str) -> List[str]:
    """The addresses `terraform state list` printed; none for a stage without
    a state yet (the command fails then), DeployError for any other failure."""
    if returncode == 0:
        return stdout.split()
    if "No state file was found" in stderr:
        return []
    raise DeployError(f"terraform state list exited with {returncode}: {stderr.strip()}")


def needs_import(log_group_exists: bool, state_addresses: Sequence[str], address: str = MIGRATE_LOG_GROUP) -> bool:
    """A stage deployed before infra/lambda.tf managed a function's log group
    has one that Lambda made (or a destroy left): creating it would fail with
    ResourceAlreadyExistsException, so it is imported instead."""
    return log_group_exists and address not in state_addresses


def outputs_region(outputs_text: str) -> str:
    try:
        return json.loads(outputs_text)["region"]["value"]
    except (ValueError, KeyError, TypeError):
        raise DeployError("`terraform output -json` has no region output (did the apply finish?)") from None


def left_behind(app: str, stage: str) -> List[str]:
    """What a destroy leaves on purpose (docs/deploy.md, Teardown)."""
    name = function_name(app, stage)
    return [
        f"unless skip_final_snapshot = true was applied first, the final snapshot {name}-final-* "
        "(billed; restorable only while the KMS key exists)",
        f"the KMS key alias/{name} is scheduled for deletion (kms_deletion_window_days); "
        "`aws kms cancel-key-deletion` undoes it meanwhile",
        f"the secrets {name}/... are scheduled for deletion (secret_recovery_window_days); "
        "`aws secretsmanager restore-secret` undoes it meanwhile",
    ]


# --------------------------------------------------------------------------- AWS (boto3)


def aws_client(session: Any, service: str, region: str, *, read_timeout: int = AWS_READ_TIMEOUT,
               attempts: int = 3) -> Any:
    from botocore.config import Config

    return session.client(service, region_name=region, config=Config(
        connect_timeout=AWS_CONNECT_TIMEOUT, read_timeout=read_timeout,
        retries={"total_max_attempts": attempts, "mode": "standard"}))


def caller_identity(session: Any, region: str) -> Dict[str, str]:
    return aws_client(session, "sts", region).get_caller_identity()


def function_exists(lambda_client: Any, name: str) -> bool:
    try:
        lambda_client.get_function(FunctionName=name)
        return True
    except lambda_client.exceptions.ResourceNotFoundException:
        return False


def wait_updated(lambda_client: Any, name: str) -> None:
    lambda_client.get_waiter("function_updated_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": WAIT_DELAY, "MaxAttempts": WAIT_ATTEMPTS})


def update_code(session: Any, region: str, name: str, zip_bytes: bytes) -> None:
    client = aws_client(session, "lambda", region, read_timeout=UPLOAD_READ_TIMEOUT)
    wait_updated(client, name)  # an update still in progress refuses another
    client.update_function_code(FunctionName=name, ZipFile=zip_bytes, Publish=False)
    wait_updated(client, name)


def put_role_policy(session: Any, region: str, role: str, document: Mapping[str, Any]) -> None:
    """The role's inline policy, as chalice deploy would put it (same name,
    same document), so that chalice deploy later finds nothing to change."""
    aws_client(session, "iam", region).put_role_policy(RoleName=role, PolicyName=role,
                                                       PolicyDocument=json.dumps(document, indent=2))


def update_environment(session: Any, region: str, name: str, environment: Mapping[str, str]) -> None:
    # The whole environment: Lambda replaces it, as chalice deploy does.
    client = aws_client(session, "lambda", region)
    wait_updated(client, name)
    client.update_function_configuration(FunctionName=name, Environment={"Variables": dict(environment)})
    wait_updated(client, name)


def invoke(session: Any, region: str, name: str) -> Any:
    # One attempt: a retry after a read timeout would run the migrations twice
    # at once (they are idempotent, concurrent DDL is not).
    client = aws_client(session, "lambda", region, read_timeout=INVOKE_READ_TIMEOUT, attempts=1)
    response = client.invoke(FunctionName=name, InvocationType="RequestResponse", LogType="Tail", Payload=b"{}")
    tail = base64.b64decode(response.get("LogResult") or b"").decode("utf-8", "replace")
    return migrate_result(response["Payload"].read(), response.get("FunctionError"), tail)


def log_group_exists(session: Any, region: str, name: str) -> bool:
    client = aws_client(session, "logs", region)
    groups = client.describe_log_groups(logGroupNamePrefix=name, limit=50)["logGroups"]
    return any(g.get("logGroupName") == name for g in groups)


def set_throttling(session: Any, region: str, api_id: str, stage_name: str,
                   operations: List[Dict[str, str]]) -> Dict[str, Any]:
    """UpdateStage (idempotent: the same values again change nothing); the
    stage's "*/*" method settings as API Gateway now has them."""
    client = aws_client(session, "apigateway", region)
    stage = client.update_stage(restApiId=api_id, stageName=stage_name, patchOperations=operations)
    return (stage.get("methodSettings") or {}).get("*/*") or {}


def deletion_protected(session: Any, region: str, cluster: str) -> Optional[bool]:
    """DeletionProtection of the Aurora cluster; None when there is none."""
    client = aws_client(session, "rds", region)
    try:
        clusters = client.describe_db_clusters(DBClusterIdentifier=cluster)["DBClusters"]
    except client.exceptions.DBClusterNotFoundFault:
        return None
    return bool(clusters and clusters[0].get("DeletionProtection"))


# --------------------------------------------------------------------------- running


def banner(number: int, total: int, text: str) -> None:
    print(f"\n== {number}/{total} {text}", flush=True)


def run(cmd: Sequence[str], *, timeout: Optional[int], env: Optional[Mapping[str, str]] = None,
        capture: bool = False, input_text: Optional[str] = None) -> str:
    print("$ " + " ".join(cmd), flush=True)
    try:
        done = subprocess.run(list(cmd), cwd=ROOT, env=dict(env) if env else None, timeout=timeout, check=False,
                              text=True, input=input_text, stdout=subprocess.PIPE if capture else None)
    except subprocess.TimeoutExpired:
        raise DeployError(f"{cmd[0]} did not finish within {timeout} s") from None
    except OSError as exc:
        raise DeployError(f"cannot run {cmd[0]}: {exc}") from None
    if done.returncode != 0:
        raise DeployError(f"{' '.join(cmd[:3])} ... exited with {done.returncode}")
    return done.stdout or ""


@dataclass
class Context:
    stage: str
    region: str
    app: str
    key: str
    bucket: str
    session: Any
    env: Dict[str, str]
    chalice: str


def prepare(args: argparse.Namespace) -> Context:
    import boto3

    stage = check_stage(args.stage)
    app = app_name(CHALICE_CONFIG.read_text(encoding="utf-8"))
    if shutil.which("terraform") is None:
        raise DeployError("terraform is not on PATH (Terraform >= 1.11, see infra/versions.tf)")
    if not BACKEND_FILE.is_file():
        raise DeployError(f"{BACKEND_FILE.relative_to(ROOT)} is missing: copy infra/backend.hcl.example and fill it in")
    settings = parse_backend_config(BACKEND_FILE.read_text(encoding="utf-8"))
    problems = backend_problems(settings)
    if problems:
        raise DeployError("infra/backend.hcl " + "; ".join(problems))

    session = boto3.Session()
    region = resolve_region(args.region, os.environ, session.region_name)
    if TFVARS_FILE.is_file():
        pinned = tfvars_region(TFVARS_FILE.read_text(encoding="utf-8"))
        if pinned and pinned != region:
            raise DeployError(f"infra/terraform.tfvars says region = {pinned!r} but the AWS region is {region!r}: "
                              "set AWS_REGION (or --region) to the stack's region, or fix terraform.tfvars")
    key = state_key(args.state_prefix or app, stage)

    identity = caller_identity(session, region)
    print(f"AWS account {identity['Account']} as {identity['Arn']}\n"
          f"region      {region}\n"
          f"stage       {stage} (functions {function_name(app, stage)}, {function_name(app, stage, MIGRATE)} "
          f"and {len(EXTRA_FUNCTIONS)} more)\n"
          f"state       s3://{settings['bucket']}/{key}", flush=True)

    env = dict(os.environ, AWS_REGION=region, AWS_DEFAULT_REGION=region)
    chalice = str(Path(sys.executable).parent / "chalice")
    if not Path(chalice).is_file():
        chalice = shutil.which("chalice") or ""
    if not chalice:
        raise DeployError("chalice is not installed next to this Python (make venv-dev)")
    return Context(stage, region, app, key, settings["bucket"], session, env, chalice)


def init(ctx: Context) -> None:
    run(init_command(BACKEND_FILE, ctx.key), timeout=INIT_TIMEOUT, env=ctx.env)


def state_addresses(ctx: Context) -> List[str]:
    cmd = terraform_command(["state", "list"], ctx.stage, ctx.region)
    print("$ " + " ".join(cmd), flush=True)
    try:
        done = subprocess.run(cmd, cwd=ROOT, env=ctx.env, timeout=OUTPUT_TIMEOUT, check=False, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    except subprocess.TimeoutExpired:
        raise DeployError(f"terraform state list did not finish within {OUTPUT_TIMEOUT} s") from None
    return parse_state_list(done.returncode, done.stdout, done.stderr)


def adopt_log_groups(ctx: Context) -> None:
    addresses: Optional[List[str]] = None
    for function, address in LOG_GROUP_ADDRESSES.items():
        name = log_group_name(ctx.app, ctx.stage, function)
        if not log_group_exists(ctx.session, ctx.region, name):
            continue  # a new stage or function, or one managed and then deleted: the apply creates it
        if addresses is None:
            addresses = state_addresses(ctx)
        if needs_import(True, addresses, address):
            print(f"{name} exists but is not in the state (made by Lambda before infra/lambda.tf managed it): "
                  "importing it, so the apply gives it the retention and the KMS key", flush=True)
            run(terraform_command(["import", address, name], ctx.stage, ctx.region), timeout=OUTPUT_TIMEOUT,
                env=ctx.env)


def deployed_text(ctx: Context) -> Optional[str]:
    deployed = CHALICE_DEPLOYED / f"{ctx.stage}.json"
    return deployed.read_text(encoding="utf-8") if deployed.is_file() else None


def websocket(ctx: Context, outputs: str, rendered_with: Optional[str]) -> None:
    recorded = websocket_api_id(deployed_text(ctx))
    if recorded is None:
        print("chalice deploy recorded no WebSocket API: WEBSOCKET_URL stays unset, the app offers no push",
              flush=True)
        return
    if not redeploy_for_websocket(rendered_with, recorded):
        print(f"WebSocket API {recorded}: WEBSOCKET_URL and the push policy already name it", flush=True)
        return
    print(f"WebSocket API {recorded} is new to the rendered stage: render it in, chalice deploy once more",
          flush=True)
    run(render_command(ctx.stage, recorded), timeout=OUTPUT_TIMEOUT, env=ctx.env, input_text=outputs)
    run([ctx.chalice, "--project-dir", str(ROOT), "deploy", "--stage", ctx.stage], timeout=None, env=ctx.env)


def throttle(ctx: Context, operations: List[Dict[str, str]]) -> None:
    deployed = CHALICE_DEPLOYED / f"{ctx.stage}.json"
    if not deployed.is_file():
        raise DeployError(f"{deployed.relative_to(ROOT)} is missing after chalice deploy: "
                          "the stage throttling is not set")
    api_id = rest_api_id(deployed.read_text(encoding="utf-8"))
    stage_name = api_gateway_stage(CHALICE_CONFIG.read_text(encoding="utf-8"), ctx.stage)
    try:
        now = set_throttling(ctx.session, ctx.region, api_id, stage_name, operations)
    except Exception as exc:  # the code is deployed; say so, and how to finish
        if type(exc).__module__.startswith("botocore"):
            raise DeployError(f"AWS: {exc}\nThe new code is deployed but the stage throttling of REST API {api_id} "
                              f"stage {stage_name} is not set; deploy again.") from None
        raise
    print(f"REST API {api_id} stage {stage_name}: throttling rate {now.get('throttlingRateLimit')}/s, "
          f"burst {now.get('throttlingBurstLimit')}", flush=True)


def update_migrate(ctx: Context, migrate: str, zip_path: Path) -> None:
    """The new code, and with it the rendered environment and role policy:
    the migrations of this release may need a setting or a secret the last
    one lacked (the app user's secret: APP_DB_SECRET_ARN, readable only by
    the new policy). The policy goes first, so that IAM has propagated it by
    the time the new environment starts fresh containers."""
    check_package_size(zip_path.stat().st_size)
    config_text = CHALICE_CONFIG.read_text(encoding="utf-8")
    policy_file = ROOT / ".chalice" / function_policy_file(config_text, ctx.stage, MIGRATE)
    role = role_name(ctx.app, ctx.stage, MIGRATE)
    put_role_policy(ctx.session, ctx.region, role, json.loads(policy_file.read_text(encoding="utf-8")))
    print(f"{role}: policy {policy_file.name} in place", flush=True)
    update_code(ctx.session, ctx.region, migrate, zip_path.read_bytes())
    update_environment(ctx.session, ctx.region, migrate, function_environment(config_text, ctx.stage, MIGRATE))
    print(f"{migrate}: new code and environment in place", flush=True)


def deploy(ctx: Context) -> None:
    migrate = function_name(ctx.app, ctx.stage, MIGRATE)
    lambda_client = aws_client(ctx.session, "lambda", ctx.region)
    total = 5

    banner(1, total, f"terraform init: the state of stage {ctx.stage}")
    init(ctx)

    banner(2, total, "terraform apply (review the plan; Terraform asks before it changes anything)")
    adopt_log_groups(ctx)
    run(terraform_command(["apply"], ctx.stage, ctx.region), timeout=None, env=ctx.env)

    banner(3, total, f"render the Chalice stage {ctx.stage} from terraform output")
    outputs = run(terraform_command(["output", "-json"], ctx.stage, ctx.region), timeout=OUTPUT_TIMEOUT,
                  env=ctx.env, capture=True)
    if outputs_region(outputs) != ctx.region:
        raise DeployError(f"the stack is in {outputs_region(outputs)}, the AWS region is {ctx.region}")
    # The WebSocket API id of an existing stage, so its push keeps working
    # through this deploy; none on a first deploy (the websocket step then).
    rendered_with = websocket_api_id(deployed_text(ctx))
    run(render_command(ctx.stage, rendered_with), timeout=OUTPUT_TIMEOUT, env=ctx.env, input_text=outputs)
    # Checked now, before any code changes, though applied after chalice deploy.
    throttle_operations = throttle_patch_operations(*api_throttle(outputs))

    steps = plan_code_steps(function_exists(lambda_client, migrate))
    banner(4, total, "migrations before new code: " + " -> ".join(s.name for s in steps))
    for step in steps:
        print(f"-- {step.what}", flush=True)
    with tempfile.TemporaryDirectory(prefix="chalice-package-") as out:
        for step in steps:
            print(f"\n-- {step.name}", flush=True)
            if step is PACKAGE:
                run([ctx.chalice, "--project-dir", str(ROOT), "package", "--stage", ctx.stage, out],
                    timeout=PACKAGE_TIMEOUT, env=ctx.env)
            elif step is UPDATE_MIGRATE:
                update_migrate(ctx, migrate, Path(out) / "deployment.zip")
            elif step is INVOKE_MIGRATE:
                try:
                    result = invoke(ctx.session, ctx.region, migrate)
                except DeployError as exc:
                    raise DeployError(f"{exc}\n{after_failed_migration(steps)}") from None
                print(f"{migrate}: {json.dumps(result)}", flush=True)
            elif step is CHALICE_DEPLOY:
                run([ctx.chalice, "--project-dir", str(ROOT), "deploy", "--stage", ctx.stage],
                    timeout=None, env=ctx.env)
            elif step is THROTTLE:
                throttle(ctx, throttle_operations)
            elif step is WEBSOCKET:
                websocket(ctx, outputs, rendered_with)

    banner(5, total, "done")
    url = run([ctx.chalice, "--project-dir", str(ROOT), "url", "--stage", ctx.stage], timeout=URL_TIMEOUT,
              env=ctx.env, capture=True).strip()
    ws = ((json.loads(CHALICE_CONFIG.read_text(encoding="utf-8")).get("stages") or {}).get(ctx.stage) or {}).get(
        "environment_variables", {}).get("WEBSOCKET_URL")
    print(f"API: {url}\nWebSocket: {ws or 'none (push not offered)'}\n"
          f"Try: curl -s -X POST \"{url}register?user_name=shir\"")


def confirm(stage: str) -> None:
    try:
        answer = input(f"Type the stage name ({stage}) to delete its app and then its infrastructure: ")
    except EOFError:
        answer = ""
    if answer.strip() != stage:
        raise DeployError("not confirmed; nothing was deleted")


def destroy(ctx: Context) -> None:
    cluster = function_name(ctx.app, ctx.stage)  # local.name in infra/: <name_prefix>-<stage>
    total = 4

    banner(1, total, f"terraform init: the state of stage {ctx.stage}")
    init(ctx)

    banner(2, total, "preconditions")
    if deletion_protected(ctx.session, ctx.region, cluster):
        raise DeployError(f"Aurora cluster {cluster} has deletion protection on; first (docs/deploy.md, Teardown):\n"
                          f"  {sys.executable} scripts/deploy.py tf --stage {ctx.stage} -- apply "
                          "-var deletion_protection=false")
    confirm(ctx.stage)

    banner(3, total, f"chalice delete --stage {ctx.stage}: the Lambdas (and their network interfaces) first")
    run([ctx.chalice, "--project-dir", str(ROOT), "delete", "--stage", ctx.stage], timeout=None, env=ctx.env)
    lambda_client = aws_client(ctx.session, "lambda", ctx.region)
    # Every function: those in the VPC hold network interfaces in its subnets.
    remaining = [n for n in (function_name(ctx.app, ctx.stage), *(function_name(ctx.app, ctx.stage, f)
                                                                 for f in FUNCTIONS))
                 if function_exists(lambda_client, n)]
    if remaining:
        raise DeployError(f"still there after chalice delete: {', '.join(remaining)} (no .chalice/deployed/"
                          f"{ctx.stage}.json on this machine?); delete them, then run this again")

    banner(4, total, "terraform destroy (Terraform asks again)")
    run(terraform_command(["destroy"], ctx.stage, ctx.region), timeout=None, env=ctx.env)
    print("\nLeft behind on purpose:")
    for note in left_behind(ctx.app, ctx.stage):
        print(f"  - {note}")


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    tf_args: List[str] = []
    if "--" in argv:
        at = argv.index("--")
        argv, tf_args = argv[:at], argv[at + 1:]
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["deploy", "destroy", "tf"])
    parser.add_argument("--stage", required=True, help="the stage: part of every name and of the state key")
    parser.add_argument("--region", help="AWS region of the stack (default: AWS_REGION, AWS_DEFAULT_REGION, profile)")
    parser.add_argument("--state-prefix", help="state key prefix (default: app_name of .chalice/config.json)")
    args = parser.parse_args(argv)
    if tf_args and args.command != "tf":
        parser.error("terraform arguments after -- go with the tf command only")
    if args.command == "tf" and not tf_args:
        parser.error("tf needs a terraform command after --, e.g. `-- plan`")

    try:
        ctx = prepare(args)
        if args.command == "deploy":
            deploy(ctx)
        elif args.command == "destroy":
            destroy(ctx)
        else:
            init(ctx)
            run(terraform_command(tf_args, ctx.stage, ctx.region), timeout=None, env=ctx.env)
    except DeployError as exc:
        print(f"\ndeploy.py: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ndeploy.py: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # botocore errors: say which call failed, not a traceback
        if type(exc).__module__.startswith("botocore"):
            print(f"\ndeploy.py: AWS: {exc}", file=sys.stderr)
            return 1
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
