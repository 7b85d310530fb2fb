"""What a deploy works with (the paths, the Context the preflight builds,
the one error every step raises) and the order of its code steps.

After terraform apply and the render, the code steps (plan_code_steps):
  * the stage exists (its migrate Lambda does): chalice package, put the new
    package, environment and role policy (as rendered) into the migrate
    Lambda only, wait, invoke it, chalice deploy, throttle (REST API),
    websocket_throttle, websocket;
  * first deploy: chalice deploy, throttle, websocket_throttle, websocket,
    then invoke migrate.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Sequence

from chalicelib.settings import PROJECT_ROOT

ROOT = PROJECT_ROOT
INFRA = ROOT / "infra"
BACKEND_FILE = INFRA / "backend.hcl"
TFVARS_FILE = INFRA / "terraform.tfvars"
CHALICE_DIR = ROOT / ".chalice"
CHALICE_CONFIG = CHALICE_DIR / "config.json"
CHALICE_DEPLOYED = CHALICE_DIR / "deployed"  # <stage>.json, written by chalice deploy


class DeployError(Exception):
    """A precondition or a step failed; the message says what to do."""


@dataclass
class Context:
    """What every step works with, made by preflight.prepare."""
    stage: str
    region: str
    app: str
    key: str  # the state key, <prefix>/<stage>/terraform.tfstate
    bucket: str
    session: Any  # boto3.Session
    env: Dict[str, str]  # for the subprocesses: AWS_REGION and AWS_DEFAULT_REGION set to region
    chalice: str  # the chalice executable


@dataclass(frozen=True)
class Step:
    name: str
    what: str


PACKAGE = Step("package", "chalice package: build the new deployment.zip")
UPDATE_MIGRATE = Step("update_migrate", "put the new role policy, package and environment into the migrate "
                                          "Lambda only, and wait")
INVOKE_MIGRATE = Step("invoke_migrate", "invoke migrate: apply pending migrations")
CHALICE_DEPLOY = Step("chalice_deploy", "chalice deploy: the new code serves")
THROTTLE = Step("throttle", "REST API stage throttling (rate, burst) from the Terraform outputs")
WEBSOCKET_THROTTLE = Step("websocket_throttle", "WebSocket API stage throttling (DefaultRouteSettings: rate, burst) "
                                                "from the Terraform outputs, on the API Chalice recorded")
WEBSOCKET = Step("websocket", "WEBSOCKET_URL and the push policy from the WebSocket API id Chalice recorded; "
                              "chalice deploy once more only if that id is new (first deploy with push)")


def plan_code_steps(migrate_exists: bool) -> List[Step]:
    """Migrations run before new code serves. On a first deploy there is no
    migrate function (and no old code) yet, so Chalice creates it first.
    Throttling follows chalice deploy at once: the stages exist only from
    then on (first deploy), and Chalice has just recorded the ids of both
    APIs; on a first deploy too, the WebSocket API's id is in the deployed
    file from that deploy on, before the WebSocket step renders it in. The
    WebSocket step's second chalice deploy, when there is one, keeps that
    API and its stage (Chalice re-creates only the routes and
    integrations), so the throttling made before it stays."""
    if migrate_exists:
        return [PACKAGE, UPDATE_MIGRATE, INVOKE_MIGRATE, CHALICE_DEPLOY, THROTTLE, WEBSOCKET_THROTTLE, WEBSOCKET]
    return [CHALICE_DEPLOY, THROTTLE, WEBSOCKET_THROTTLE, WEBSOCKET, INVOKE_MIGRATE]


def after_failed_migration(steps: Sequence[Step]) -> str:
    """What serves when the migrate step failed, for the error message."""
    if steps.index(INVOKE_MIGRATE) < steps.index(CHALICE_DEPLOY):
        return "chalice deploy did not run: the old code still serves. Fix the migration and deploy again."
    return ("first deploy: the code is deployed but its schema is not applied. "
            "Fix the migration and deploy again.")
