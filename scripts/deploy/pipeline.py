"""The deploy command: init, apply, render, then the code steps in the
order plan.plan_code_steps gives (migrations before new code serves), a
second apply only when the first had no REST API id for the attachments'
CORS rule (cors.py), then where to find the stage."""
from __future__ import annotations

import tempfile
from pathlib import Path

from . import chalice_deploy, configure, cors, migrate, package, proc, terraform, throttle, websocket
from .functions import API_HANDLER
from .plan import (
    CHALICE_CONFIG,
    CHALICE_DEPLOY,
    INVOKE_MIGRATE,
    PACKAGE,
    THROTTLE,
    UPDATE_MIGRATE,
    WEBSOCKET,
    WEBSOCKET_THROTTLE,
    Context,
    plan_code_steps,
)


def deploy(ctx: Context) -> None:
    total = 6

    proc.banner(1, total, f"terraform init: the state of stage {ctx.stage}")
    terraform.init(ctx)

    proc.banner(2, total, "terraform apply (review the plan; Terraform asks before it changes anything)")
    # The REST API id the apply gets (the attachments bucket's CORS origin);
    # none on a first deploy (the cors step then).
    applied_with = cors.recorded_id(ctx)
    terraform.apply(ctx)

    proc.banner(3, total, f"render the Chalice stage {ctx.stage} from terraform output")
    outputs = terraform.output(ctx)
    # The WebSocket API id of an existing stage, so its push keeps working
    # through this deploy; none on a first deploy (the websocket step then).
    rendered_with = websocket.recorded_id(ctx)
    configure.render(ctx, outputs, rendered_with)
    # Checked now, before any code changes, though applied after chalice deploy.
    throttle_operations = throttle.throttle_patch_operations(*throttle.api_throttle(outputs))
    websocket_route_settings = throttle.websocket_route_settings(*throttle.websocket_throttle(outputs))

    steps = plan_code_steps(migrate.exists(ctx))
    proc.banner(4, total, "migrations before new code: " + " -> ".join(s.name for s in steps))
    for step in steps:
        proc.say(f"-- {step.what}")
    with tempfile.TemporaryDirectory(prefix="chalice-package-") as out:
        zip_path = Path(out) / "deployment.zip"
        for step in steps:
            proc.say(f"\n-- {step.name}")
            if step is PACKAGE:
                zip_path = package.package(ctx, Path(out))
            elif step is UPDATE_MIGRATE:
                migrate.update(ctx, zip_path)
            elif step is INVOKE_MIGRATE:
                migrate.invoke(ctx, steps)
            elif step is CHALICE_DEPLOY:
                chalice_deploy.deploy(ctx)
            elif step is THROTTLE:
                throttle.throttle(ctx, throttle_operations)
            elif step is WEBSOCKET_THROTTLE:
                throttle.throttle_websocket(ctx, websocket_route_settings)
            elif step is WEBSOCKET:
                websocket.websocket(ctx, outputs, rendered_with)

    proc.banner(5, total, "the attachments bucket's CORS origin: the REST API Chalice recorded")
    cors.cors(ctx, applied_with)

    proc.banner(6, total, "done")
    url = chalice_deploy.url(ctx)
    # What the API handler hands out with each connect ticket, as Chalice merges it.
    ws = migrate.function_environment(CHALICE_CONFIG.read_text(encoding="utf-8"), ctx.stage,
                                      API_HANDLER).get("WEBSOCKET_URL")
    print(f"API: {url}\nWebSocket: {ws or 'none (push not offered)'}\n"
          f"Try: curl -s -X POST \"{url}register?user_name=shir\"")
