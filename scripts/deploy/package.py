"""chalice package: the new deployment.zip, which only the migrate Lambda
gets before chalice deploy (migrate.py)."""
from __future__ import annotations

from pathlib import Path

from . import proc
from .chalice_deploy import chalice_command
from .plan import Context

PACKAGE_TIMEOUT = 900  # seconds


def package(ctx: Context, out_dir: Path) -> Path:
    proc.run(chalice_command(ctx.chalice, "package", ctx.stage, str(out_dir)), timeout=PACKAGE_TIMEOUT, env=ctx.env)
    return out_dir / "deployment.zip"
