"""The API Gateway stage throttling (outputs api_throttle_rate_limit and
api_throttle_burst_limit): Chalice has no setting for it, so it is set with
UpdateStage right after chalice deploy, on the REST API Chalice recorded.
The values are checked before any code changes, by the renderer's rules
(the bounds of their variables)."""
from __future__ import annotations

import json
from typing import Dict, List, Tuple

from . import aws, chalice_deploy, proc
from .chalice_deploy import deployed_ids, is_api_id
from .plan import CHALICE_CONFIG, CHALICE_DEPLOYED, ROOT, Context, DeployError
from .render.outputs import REQUIRED_OUTPUTS, OutputError

DEFAULT_API_GATEWAY_STAGE = "api"  # Chalice's default api_gateway_stage

# The stage-wide method settings key ("*/*": every resource and method) in
# the JSON-pointer form UpdateStage patches take.
THROTTLE_PATHS = ("/*/*/throttling/rateLimit", "/*/*/throttling/burstLimit")


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
        rate, burst = (REQUIRED_OUTPUTS[name](name, value) for name, value in zip(names, values))
    except OutputError as exc:
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


def rest_api_id(deployed_text: str) -> str:
    """The REST API id Chalice recorded in .chalice/deployed/<stage>.json."""
    ids = deployed_ids(deployed_text, "rest_api")
    if len(ids) != 1 or not is_api_id(ids[0]):
        raise DeployError(f"the Chalice deployed file has no single rest_api with a rest_api_id (found {ids})")
    return ids[0]


def api_gateway_stage(config_text: str, stage: str) -> str:
    """api_gateway_stage as Chalice looks it up: the stage's, the top-level
    one, else Chalice's default "api"."""
    config = json.loads(config_text)
    for scope in ((config.get("stages") or {}).get(stage) or {}, config):
        name = scope.get("api_gateway_stage")
        if name:
            return name
    return DEFAULT_API_GATEWAY_STAGE


# --------------------------------------------------------------------------- acting


def throttle(ctx: Context, operations: List[Dict[str, str]]) -> None:
    recorded = chalice_deploy.deployed_text(ctx)
    if recorded is None:
        raise DeployError(f"{(CHALICE_DEPLOYED / f'{ctx.stage}.json').relative_to(ROOT)} is missing after "
                          "chalice deploy: the stage throttling is not set")
    api_id = rest_api_id(recorded)
    stage_name = api_gateway_stage(CHALICE_CONFIG.read_text(encoding="utf-8"), ctx.stage)
    try:
        now = aws.set_throttling(ctx.session, ctx.region, api_id, stage_name, operations)
    except Exception as exc:  # the code is deployed; say so, and how to finish
        if aws.is_aws_error(exc):
            raise DeployError(f"AWS: {exc}\nThe new code is deployed but the stage throttling of REST API {api_id} "
                              f"stage {stage_name} is not set; deploy again.") from None
        raise
    proc.say(f"REST API {api_id} stage {stage_name}: throttling rate {now.get('throttlingRateLimit')}/s, "
             f"burst {now.get('throttlingBurstLimit')}")
