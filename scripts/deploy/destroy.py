"""The destroy command: refuses while Aurora deletion protection is on, asks
for the stage name, chalice delete (the Lambdas and their network interfaces
first: those in the VPC hold interfaces in its subnets), checks that no
function is left, then terraform destroy (which asks again), and says what
stays behind on purpose (docs/deploy.md, Teardown)."""
from __future__ import annotations

import sys
from typing import List

from . import aws, proc, terraform
from .chalice_deploy import chalice_command
from .functions import FUNCTIONS, function_name
from .plan import Context, DeployError


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


def unprotect_command(stage: str) -> str:
    return f"{sys.executable} -m scripts.deploy tf --stage {stage} -- apply -var deletion_protection=false"


# --------------------------------------------------------------------------- acting


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

    proc.banner(1, total, f"terraform init: the state of stage {ctx.stage}")
    terraform.init(ctx)

    proc.banner(2, total, "preconditions")
    if aws.deletion_protected(ctx.session, ctx.region, cluster):
        raise DeployError(f"Aurora cluster {cluster} has deletion protection on; first (docs/deploy.md, Teardown):\n"
                          f"  {unprotect_command(ctx.stage)}")
    confirm(ctx.stage)

    proc.banner(3, total, f"chalice delete --stage {ctx.stage}: the Lambdas (and their network interfaces) first")
    proc.run(chalice_command(ctx.chalice, "delete", ctx.stage), timeout=None, env=ctx.env)
    lambda_client = aws.client(ctx.session, "lambda", ctx.region)
    remaining = [name for name in (function_name(ctx.app, ctx.stage, f) for f in FUNCTIONS)
                 if aws.function_exists(lambda_client, name)]
    if remaining:
        raise DeployError(f"still there after chalice delete: {', '.join(remaining)} (no .chalice/deployed/"
                          f"{ctx.stage}.json on this machine?); delete them, then run this again")

    proc.banner(4, total, "terraform destroy (Terraform asks again)")
    terraform.run(ctx, ["destroy"])
    print("\nLeft behind on purpose:")
    for note in left_behind(ctx.app, ctx.stage):
        print(f"  - {note}")
