"""The renderer's command line: python3 -m scripts.deploy.render (see __init__.py)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import List, Optional

from ..plan import ROOT
from . import __doc__ as DOC
from .files import render
from .outputs import OutputError
from .stage import DEFAULT_TLS_CA


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python3 -m scripts.deploy.render", description=DOC.split("\n\n")[0])
    p.add_argument("outputs", help="file with the output of `terraform output -json`, or - for stdin")
    p.add_argument("--project-dir", type=Path, default=ROOT,
                   help="Chalice project whose .chalice/ is written (default: this repository)")
    p.add_argument("--stage", default="prod", help="Chalice stage to write (default: prod)")
    p.add_argument("--tls-ca", default=DEFAULT_TLS_CA,
                   help=f"CA bundle path relative to the project, for DATABASE_URL (default: {DEFAULT_TLS_CA})")
    p.add_argument("--websocket-api-id",
                   help="id of the stage's WebSocket API (Chalice records it in .chalice/deployed/<stage>.json "
                        "after the first deploy); without it there is no WEBSOCKET_URL and no push")
    return p


def main(argv: Optional[List[str]] = None) -> int:
    args = parser().parse_args(argv)
    text = sys.stdin.read() if args.outputs == "-" else Path(args.outputs).read_text(encoding="utf-8")
    try:
        written = render(text, args.project_dir.resolve(), stage_name=args.stage, tls_ca=args.tls_ca,
                         websocket_api_id=args.websocket_api_id)
    except OutputError as exc:
        print(f"render: {exc}", file=sys.stderr)
        return 1
    if not args.websocket_api_id:
        print("render: no --websocket-api-id: WEBSOCKET_URL is not set, so the app offers no push "
              "(make deploy passes the id once Chalice has made the WebSocket API)", file=sys.stderr)
    for path, changed in written.items():
        print(f"{'wrote' if changed else 'unchanged'} {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
