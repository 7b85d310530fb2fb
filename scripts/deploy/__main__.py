"""The command line: python -m scripts.deploy {deploy,destroy,tf} --stage S
(see __init__.py); `make deploy` and `make destroy` run it."""
from __future__ import annotations

import argparse
import sys
from typing import List, Optional

from . import __doc__ as DOC
from . import aws, destroy, pipeline, preflight, terraform
from .plan import DeployError


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    tf_args: List[str] = []
    if "--" in argv:
        at = argv.index("--")
        argv, tf_args = argv[:at], argv[at + 1:]
    parser = argparse.ArgumentParser(prog="python -m scripts.deploy", description=DOC.split("\n\n")[0])
    parser.add_argument("command", choices=["deploy", "destroy", "tf"])
    parser.add_argument("--stage", required=True, help="the stage: part of every name and of the state key")
    parser.add_argument("--region", help="AWS region of the stack (default: AWS_REGION, AWS_DEFAULT_REGION, profile)")
    parser.add_argument("--state-prefix", help="state key prefix (default: app_name of .chalice/config.json)")
    args = parser.parse_args(argv)
    if tf_args and args.command != "tf":
        parser.error("terraform arguments after -- go with the tf command only")
    if args.command == "tf" and not tf_args:
        parser.error("tf needs a terraform command after --, e.g. `-- plan`")

    try:
        ctx = preflight.prepare(args.stage, args.region, args.state_prefix)
        if args.command == "deploy":
            pipeline.deploy(ctx)
        elif args.command == "destroy":
            destroy.destroy(ctx)
        else:
            terraform.tf(ctx, tf_args)
    except DeployError as exc:
        print(f"\ndeploy: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ndeploy: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # botocore errors: say which call failed, not a traceback
        if aws.is_aws_error(exc):
            print(f"\ndeploy: AWS: {exc}", file=sys.stderr)
            return 1
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
