"""The API Gateway stage throttling, of both APIs Chalice makes: Chalice
has no setting for it, so the deploy sets it right after chalice deploy,
on the APIs Chalice recorded in .chalice/deployed/<stage>.json:

  * the REST API stage (outputs api_throttle_rate_limit and
    api_throttle_burst_limit): UpdateStage patch operations on the stage's
    "*/*" method settings;
  * the WebSocket API stage (outputs websocket_throttle_rate_limit and
    websocket_throttle_burst_limit): apigatewayv2 UpdateStage of the
    stage's DefaultRouteSettings. Every client frame costs a
    websocket_message invocation (and its pong an asynchronous push
    invocation), so without it one client could make thousands of
    invocations a second; throttled, API Gateway refuses the frame and no
    Lambda runs.

The values are checked before any code changes, by the renderer's rules
(the bounds of their variables)."""
from __future__ import annotations

import json
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

from . import aws, chalice_deploy, proc
from .chalice_deploy import deployed_ids, is_api_id
from .plan import CHALICE_CONFIG, CHALICE_DEPLOYED, ROOT, Context, DeployError
from .render.outputs import REQUIRED_OUTPUTS, OutputError
from .websocket import websocket_api_id

DEFAULT_API_GATEWAY_STAGE = "api"  # Chalice's default api_gateway_stage

# The stage-wide method settings key ("*/*": every resource and method) in
# the JSON-pointer form UpdateStage patches take.
THROTTLE_PATHS = ("/*/*/throttling/rateLimit", "/*/*/throttling/burstLimit")

API_THROTTLE_OUTPUTS = ("api_throttle_rate_limit", "api_throttle_burst_limit")
WEBSOCKET_THROTTLE_OUTPUTS = ("websocket_throttle_rate_limit", "websocket_throttle_burst_limit")


def _rate_and_burst(outputs_text: str, names: Tuple[str, str]) -> Tuple[float, int]:
    try:
        outputs = json.loads(outputs_text)
        values = [outputs[name]["value"] for name in names]
    except (ValueError, KeyError, TypeError):
        raise DeployError(f"`terraform output -json` has no {names[0]} / {names[1]} "
                          "(did the apply finish?)") from None
    try:
        rate, burst = (REQUIRED_OUTPUTS[name](name, value) for name, value in zip(names, values, strict=True))
    except OutputError as exc:
        raise DeployError(str(exc)) from None
    return rate, burst


def api_throttle(outputs_text: str) -> Tuple[float, int]:
    """(rate, burst) of the outputs api_throttle_rate_limit / _burst_limit,
    checked by the renderer's rules (the bounds of their variables)."""
    return _rate_and_burst(outputs_text, API_THROTTLE_OUTPUTS)


def websocket_throttle(outputs_text: str) -> Tuple[float, int]:
    """(rate, burst) of the outputs websocket_throttle_rate_limit /
    _burst_limit, checked by the same rules."""
    return _rate_and_burst(outputs_text, WEBSOCKET_THROTTLE_OUTPUTS)


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


def websocket_route_settings(rate: float, burst: int) -> Dict[str, Any]:
    """The WebSocket stage's DefaultRouteSettings: the throttling of every
    route ($connect and every client frame; a route's own RouteSettings
    would win, none are made). Both limits, always together: route
    settings with one limit unset have been reported to act as a limit of
    0, refusing every message (terraform-provider-aws #14742, pulumi-aws
    #2363). Typed as the service model has them: a Double rate, an Integer
    burst. The other route settings (logging, metrics) are not sent;
    neither Chalice nor infra/ sets any."""
    return {"ThrottlingRateLimit": float(rate), "ThrottlingBurstLimit": int(burst)}


def websocket_stage_update(api_id: str, stage_name: str, route_settings: Mapping[str, Any]) -> Dict[str, Any]:
    """The keyword arguments of apigatewayv2 UpdateStage (idempotent: the
    same values again change nothing)."""
    return {"ApiId": api_id, "StageName": stage_name, "DefaultRouteSettings": dict(route_settings)}


def rest_api_id(deployed_text: str) -> str:
    """The REST API id Chalice recorded in .chalice/deployed/<stage>.json."""
    ids = deployed_ids(deployed_text, "rest_api")
    if len(ids) != 1 or not is_api_id(ids[0]):
        raise DeployError(f"the Chalice deployed file has no single rest_api with a rest_api_id (found {ids})")
    return ids[0]


def api_gateway_stage(config_text: str, stage: str) -> str:
    """api_gateway_stage as Chalice looks it up: the stage's, the top-level
    one, else Chalice's default "api". Chalice gives the REST API's stage
    and the WebSocket API's stage this one name."""
    config = json.loads(config_text)
    for scope in ((config.get("stages") or {}).get(stage) or {}, config):
        name = scope.get("api_gateway_stage")
        if name:
            return name
    return DEFAULT_API_GATEWAY_STAGE


# --------------------------------------------------------------------------- acting


def _recorded(ctx: Context, what: str) -> str:
    recorded = chalice_deploy.deployed_text(ctx)
    if recorded is None:
        raise DeployError(f"{(CHALICE_DEPLOYED / f'{ctx.stage}.json').relative_to(ROOT)} is missing after "
                          f"chalice deploy: the {what} is not set")
    return recorded


def _update(what: str, call: Callable[[], Dict[str, Any]]) -> Dict[str, Any]:
    """An UpdateStage call after the code is deployed: a failure says so, and how to finish."""
    try:
        return call()
    except Exception as exc:
        if aws.is_aws_error(exc):
            raise DeployError(f"AWS: {exc}\nThe new code is deployed but the stage throttling of {what} is not set; "
                              "deploy again.") from None
        raise


def throttle(ctx: Context, operations: List[Dict[str, str]]) -> None:
    api_id = rest_api_id(_recorded(ctx, "stage throttling"))
    stage_name = api_gateway_stage(CHALICE_CONFIG.read_text(encoding="utf-8"), ctx.stage)
    now = _update(f"REST API {api_id} stage {stage_name}",
                  lambda: aws.set_throttling(ctx.session, ctx.region, api_id, stage_name, operations))
    proc.say(f"REST API {api_id} stage {stage_name}: throttling rate {now.get('throttlingRateLimit')}/s, "
             f"burst {now.get('throttlingBurstLimit')}")


def throttle_websocket(ctx: Context, route_settings: Mapping[str, Any]) -> Optional[str]:
    """Throttle the stage of the WebSocket API Chalice recorded (it records
    the id in the chalice deploy that makes the API, the first deploy's
    included); the API id, or None when there is no WebSocket API."""
    api_id = websocket_api_id(_recorded(ctx, "WebSocket stage throttling"))
    if api_id is None:
        proc.say("chalice deploy recorded no WebSocket API: no WebSocket stage to throttle")
        return None
    stage_name = api_gateway_stage(CHALICE_CONFIG.read_text(encoding="utf-8"), ctx.stage)
    update = websocket_stage_update(api_id, stage_name, route_settings)
    now = _update(f"WebSocket API {api_id} stage {stage_name}",
                  lambda: aws.set_websocket_throttling(ctx.session, ctx.region, update))
    proc.say(f"WebSocket API {api_id} stage {stage_name}: throttling rate {now.get('ThrottlingRateLimit')}/s, "
             f"burst {now.get('ThrottlingBurstLimit')}")
    return api_id
