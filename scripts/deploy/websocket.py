"""The WebSocket API's id is known only once Chalice made the API (it
records it in .chalice/deployed/<stage>.json). The render passes the id it
finds there; after chalice deploy this step looks at the id Chalice
recorded and, only if it is new (the first deploy with push, or an API
Chalice had to make anew), renders again with it and runs chalice deploy
once more, so that WEBSOCKET_URL and the push function's @connections
permission reach the functions."""
from __future__ import annotations

from typing import Optional

from . import chalice_deploy, configure, proc
from .chalice_deploy import deployed_ids, is_api_id
from .plan import Context, DeployError


def websocket_api_id(deployed_text: Optional[str]) -> Optional[str]:
    """The WebSocket API id Chalice recorded ({"name": "websocket_api",
    "resource_type": "websocket_api", "websocket_api_id": ...,
    "websocket_api_url": "wss://<id>.execute-api.<region>.<suffix>/<stage>/"});
    None before Chalice made one (no file yet, or a stage deployed before
    the app had WebSocket handlers)."""
    if deployed_text is None:
        return None
    ids = deployed_ids(deployed_text, "websocket_api")
    if not ids:
        return None
    if len(ids) != 1 or not is_api_id(ids[0]):
        raise DeployError(f"the Chalice deployed file has no single websocket_api with a websocket_api_id "
                          f"(found {ids})")
    return ids[0]


def redeploy_for_websocket(rendered_with: Optional[str], recorded: Optional[str]) -> bool:
    """After chalice deploy: deploy again only when Chalice recorded a
    WebSocket API id the functions were not rendered with (the first deploy
    with push, or an API Chalice had to make anew); the same id again means
    the same files, so no second deploy."""
    return recorded is not None and recorded != rendered_with


# --------------------------------------------------------------------------- acting


def recorded_id(ctx: Context) -> Optional[str]:
    return websocket_api_id(chalice_deploy.deployed_text(ctx))


def websocket(ctx: Context, outputs: str, rendered_with: Optional[str]) -> None:
    recorded = recorded_id(ctx)
    if recorded is None:
        proc.say("chalice deploy recorded no WebSocket API: WEBSOCKET_URL stays unset, the app offers no push")
        return
    if not redeploy_for_websocket(rendered_with, recorded):
        proc.say(f"WebSocket API {recorded}: WEBSOCKET_URL and the push policy already name it")
        return
    proc.say(f"WebSocket API {recorded} is new to the rendered stage: render it in, chalice deploy once more")
    configure.render(ctx, outputs, recorded)
    chalice_deploy.deploy(ctx)
