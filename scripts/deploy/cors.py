"""The attachments bucket's CORS rule allows the REST API's own origin (the
web client is served by the API: https://<id>.execute-api.<region>.<suffix>),
but the REST API is Chalice's, made after `terraform apply` on a first
deploy. So every Terraform command that takes variables gets the id
Chalice recorded in .chalice/deployed/<stage>.json as `-var
rest_api_id=<id>` (terraform.py), none before there is one; and after
chalice deploy this step looks at the id Chalice recorded and, only if the
apply ran without it (the first deploy, or an API Chalice had to make
anew), applies once more, which changes the CORS rule alone (Terraform
shows the plan and asks again). infra/attachments.tf says why not a
wildcard origin instead."""
from __future__ import annotations

from typing import Optional

from . import chalice_deploy, proc
from .chalice_deploy import deployed_ids, is_api_id
from .plan import Context, DeployError


def rest_api_id(deployed_text: Optional[str]) -> Optional[str]:
    """The REST API id Chalice recorded ({"name": "rest_api",
    "resource_type": "rest_api", "rest_api_id": ..., "rest_api_url": ...});
    None before Chalice made one."""
    if deployed_text is None:
        return None
    ids = deployed_ids(deployed_text, "rest_api")
    if not ids:
        return None
    if len(ids) != 1 or not is_api_id(ids[0]):
        raise DeployError(f"the Chalice deployed file has no single rest_api with a rest_api_id (found {ids})")
    return ids[0]


def apply_again_for_cors(applied_with: Optional[str], recorded: Optional[str]) -> bool:
    """After chalice deploy: apply again only when Chalice recorded a REST
    API id the apply did not have (the CORS rule would not name its origin)."""
    return recorded is not None and recorded != applied_with


# --------------------------------------------------------------------------- acting


def recorded_id(ctx: Context) -> Optional[str]:
    return rest_api_id(chalice_deploy.deployed_text(ctx))


def cors(ctx: Context, applied_with: Optional[str]) -> None:
    from . import terraform  # terraform.py imports this module

    recorded = recorded_id(ctx)
    if recorded is None:
        proc.say("chalice deploy recorded no REST API: the attachments bucket allows no browser origin yet")
        return
    if not apply_again_for_cors(applied_with, recorded):
        proc.say(f"REST API {recorded}: the attachments bucket's CORS rule already allows its origin")
        return
    proc.say(f"REST API {recorded} is new to the applied stack: terraform apply once more, so that the "
             "attachments bucket's CORS rule allows its origin (only that rule should change)")
    terraform.apply(ctx)
