"""Render the Chalice stage from `terraform output -json`: the renderer
(render/) as a user runs it, the outputs on its stdin, with the WebSocket
API id once Chalice has recorded one (WEBSOCKET_URL, the push policy)."""
from __future__ import annotations

import sys
from typing import List, Optional

from . import proc
from .plan import Context

RENDER_MODULE = "scripts.deploy.render"  # run from the project root (proc.run's cwd)
RENDER_TIMEOUT = 300  # seconds


def render_command(stage: str, websocket_id: Optional[str]) -> List[str]:
    """The renderer, reading `terraform output -json` on stdin; with the
    WebSocket API id once it is known (WEBSOCKET_URL, the push policy)."""
    cmd = [sys.executable, "-m", RENDER_MODULE, "-", "--stage", stage]
    return cmd + ["--websocket-api-id", websocket_id] if websocket_id else cmd


def render(ctx: Context, outputs: str, websocket_id: Optional[str]) -> None:
    proc.run(render_command(ctx.stage, websocket_id), timeout=RENDER_TIMEOUT, env=ctx.env, input_text=outputs)
