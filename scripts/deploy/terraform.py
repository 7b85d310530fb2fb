"""Terraform against the stage's own state: init (the stage's key), the
import of log groups Lambda made before Terraform managed them, apply,
output; and the `tf` command for anything else. apply and destroy ask for
approval themselves and run without a kill timeout (proc.py)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional, Sequence

from . import aws, cors, proc
from .functions import EXTRA_FUNCTIONS, MIGRATE, log_group_name
from .plan import BACKEND_FILE, INFRA, Context, DeployError

# Seconds (proc.py: what may be killed).
INIT_TIMEOUT = 900
OUTPUT_TIMEOUT = 300

# Terraform commands that accept -var.
VAR_COMMANDS = {"plan", "apply", "destroy", "refresh", "import", "console"}

MIGRATE_LOG_GROUP = "aws_cloudwatch_log_group.migrate"  # infra/lambda.tf
# Each function's log group in infra/lambda.tf, by Terraform address (the
# others in one for_each over local.extra_functions); the API's has always
# been Terraform's, so it is never imported.
LOG_GROUP_ADDRESSES = {MIGRATE: MIGRATE_LOG_GROUP,
                       **{f: f'aws_cloudwatch_log_group.function["{f}"]' for f in EXTRA_FUNCTIONS}}


def init_command(backend_file: Path, key: str) -> List[str]:
    # -reconfigure: take this stage's key even when .terraform/ still points
    # at another stage's (and never offer to copy that state over).
    return ["terraform", f"-chdir={INFRA}", "init", "-input=false", "-reconfigure",
            f"-backend-config={backend_file}", f"-backend-config=key={key}"]


def terraform_command(args: Sequence[str], stage: str, region: str, rest_api_id: Optional[str] = None) -> List[str]:
    """`terraform <args>` in infra/, with the stage and region as variables
    for the commands that take them (so they always match the state key and
    the region shown), and the REST API id Chalice recorded, once there is
    one (the attachments bucket's CORS origin: cors.py)."""
    if not args:
        raise DeployError("no terraform command given (e.g. `-- plan`)")
    command, rest = args[0], list(args[1:])
    extra = []
    if command in VAR_COMMANDS:
        extra = ["-var", f"stage={stage}", "-var", f"region={region}"]
        if rest_api_id:
            extra += ["-var", f"rest_api_id={rest_api_id}"]
    return ["terraform", f"-chdir={INFRA}", command, *extra, *rest]


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


# --------------------------------------------------------------------------- acting


def init(ctx: Context) -> None:
    proc.run(init_command(BACKEND_FILE, ctx.key), timeout=INIT_TIMEOUT, env=ctx.env)


def run(ctx: Context, args: Sequence[str], *, timeout: Optional[int] = None, capture: bool = False) -> str:
    return proc.run(terraform_command(args, ctx.stage, ctx.region, cors.recorded_id(ctx)), timeout=timeout,
                    env=ctx.env, capture=capture)


def state_addresses(ctx: Context) -> List[str]:
    return parse_state_list(*proc.run_unchecked(terraform_command(["state", "list"], ctx.stage, ctx.region),
                                                timeout=OUTPUT_TIMEOUT, env=ctx.env))


def adopt_log_groups(ctx: Context) -> None:
    addresses: Optional[List[str]] = None
    for function, address in LOG_GROUP_ADDRESSES.items():
        name = log_group_name(ctx.app, ctx.stage, function)
        if not aws.log_group_exists(ctx.session, ctx.region, name):
            continue  # a new stage or function, or one managed and then deleted: the apply creates it
        if addresses is None:
            addresses = state_addresses(ctx)
        if needs_import(True, addresses, address):
            proc.say(f"{name} exists but is not in the state (made by Lambda before infra/lambda.tf managed it): "
                     "importing it, so the apply gives it the retention and the KMS key")
            run(ctx, ["import", address, name], timeout=OUTPUT_TIMEOUT)


def apply(ctx: Context) -> None:
    adopt_log_groups(ctx)
    run(ctx, ["apply"])


def output(ctx: Context) -> str:
    """`terraform output -json`, checked to be of the region the deploy works in."""
    outputs = run(ctx, ["output", "-json"], timeout=OUTPUT_TIMEOUT, capture=True)
    region = outputs_region(outputs)
    if region != ctx.region:
        raise DeployError(f"the stack is in {region}, the AWS region is {ctx.region}")
    return outputs


def tf(ctx: Context, args: Sequence[str]) -> None:
    init(ctx)
    run(ctx, args)
