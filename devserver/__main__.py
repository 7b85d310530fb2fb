"""`python -m devserver [--host H] [--port P] [--stage S]`: what `make run` runs."""
from __future__ import annotations

import argparse
import os
import sys

from chalicelib.settings import ConfigError

from .server import PortInUse, serve


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devserver", description=__doc__)
    parser.add_argument("--host", default=os.environ.get("HOST") or "127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT") or 8000))
    parser.add_argument("--stage", default="dev", help="the .chalice/config.json stage whose environment to use")
    args = parser.parse_args(argv)
    try:
        serve(host=args.host, port=args.port, stage=args.stage)
    except PortInUse as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
